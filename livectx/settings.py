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

This module loads the file and derives what the code connects to (:class:`Settings`). The sections are
defined apart, so each file stays about one thing: the client-side ones in :mod:`livectx.settings_sections`,
the local stack's in :mod:`livectx.settings_stack`, their base in :mod:`livectx.settings_base`, URL helpers
in :mod:`livectx.settings_urls`. All are re-exported here: ``from livectx.settings import X`` keeps working.
"""

from __future__ import annotations

import json
import os
import tomllib
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from pydantic import SecretStr, ValidationError

from livectx.errors import ConfigError
from livectx.settings_sections import (
    AuthSettings,
    CdcSettings,
    CoreSettings,
    EmbeddingSettings,
    KafkaSettings,
    RedisSettings,
    SchemaRegistrySettings,
    TierSettings,
    VectorSettings,
)
from livectx.settings_stack import StackSettings
from livectx.settings_urls import feast_redis_connection_string, mask_url, strip_user_info

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "AuthSettings",
    "CdcSettings",
    "CoreSettings",
    "EmbeddingSettings",
    "KafkaSettings",
    "RedisSettings",
    "SchemaRegistrySettings",
    "Settings",
    "StackSettings",
    "TierSettings",
    "VectorSettings",
    "feast_redis_connection_string",
    "get_settings",
]

DEFAULT_CONFIG_FILE = "livectx.toml"


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
    def external_services(self) -> bool:
        """Whether Kafka or Redis is configured elsewhere (``LIVECTX_KAFKA_BOOTSTRAP_SERVERS``,
        ``LIVECTX_REDIS_URL``) rather than the local stack's: then the stack's processes are not the ones
        in use (no PIDs to read, nothing to start or stop)."""
        return bool(self.kafka.bootstrap_servers) or self.redis.url is not None

    @property
    def redis_cluster(self) -> bool:
        """Whether the online store is a Redis Cluster: said so (``LIVECTX_REDIS_CLUSTER``), or the local
        stack runs one (``LIVECTX_STACK_REDIS_CLUSTER_NODES``) and no URL points elsewhere."""
        return self.redis.cluster or (self.redis.url is None and self.stack.redis_cluster_nodes > 0)

    @property
    def redis_url(self) -> str:
        if self.redis.url is not None:
            return self.redis.url.get_secret_value()
        return self._local_url("redis", self.stack.redis_port, "0", secret="redis", anonymous="")

    @property
    def local_schema_registry_url(self) -> str:
        """The local stack's Apicurio, at its Confluent-compatible API."""
        return f"http://{self.stack.host}:{self.stack.schema_registry_port}/apis/ccompat/v7"

    @property
    def schema_registry_url(self) -> str:
        """The registry's URL without credentials (safe to print); see :meth:`schema_registry_config`."""
        if self.schema_registry.url is None:
            return self.local_schema_registry_url
        return strip_user_info(self.schema_registry.url.get_secret_value())

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
        return self._local_url(
            "postgresql", self.stack.postgres_port, "livectx", secret="postgres", anonymous="livectx@"
        )

    def _local_url(self, scheme: str, port: int, database: str, *, secret: str, anonymous: str) -> str:
        """A URL of one of the local stack's services: user ``livectx`` with its password (``secret``, see
        :meth:`local_secret`) on the secured stack, else ``anonymous`` user-info (plain Redis has no users and
        gets none; Postgres always needs its role named)."""
        password = self.local_secret(secret)
        user = f"livectx:{password}@" if password else anonymous
        return f"{scheme}://{user}{self.stack.host}:{port}/{database}"

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
            "redis": mask_url(self.redis_url) + (" (cluster)" if self.redis_cluster else ""),
            "schema registry": self.schema_registry_url
            + (" (with credentials)" if "basic.auth.user.info" in self.schema_registry_config() else ""),
            "state dir": str(self.stack.state_dir),
            "data dir": str(self.data_dir),
            "feature repo": str(self.feature_repo),
            "vector backend": self.vector.backend,
            "vector index": self.vector.index,
            "pgvector": mask_url(self.pgvector_dsn) if self.vector.backend == "pgvector" else "(unused)",
            "embedding model": self.embedding.model,
            "cold tier": self.tier_url,
        }


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
