"""The client-side settings sections: one frozen model per concern the product's code connects to.

Each section reads its own ``LIVECTX_<CONCERN>_*`` variables and its ``[concern]`` table of the config file
(:mod:`livectx.settings` assembles them). They live apart from the local stack's settings
(:mod:`livectx.settings_stack`) because these describe *any* deployment (Confluent Cloud, Redis Cluster, a
hosted registry), while those describe only the stack ``livectx stack`` runs on this machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from livectx.settings_base import Section


class KafkaSettings(Section):
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


class RedisSettings(Section):
    """The Redis (or Redis Cluster) that holds Feast's online store."""

    model_config = SettingsConfigDict(env_prefix="LIVECTX_REDIS_", frozen=True, extra="forbid")

    url: SecretStr | None = None
    cluster: bool = False


class SchemaRegistrySettings(Section):
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


class CdcSettings(Section):
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


class VectorSettings(Section):
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


class EmbeddingSettings(Section):
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


class TierSettings(Section):
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


class AuthSettings(Section):
    """Authentication of the product's servers (``livectx serve``, ``livectx mcp --transport http``).

    ``auto`` (default): API keys are required unless the server listens on loopback only and the stack is
    the plain local one (the demo); ``required`` / ``off`` force it either way."""

    model_config = SettingsConfigDict(env_prefix="LIVECTX_AUTH_", frozen=True, extra="forbid")

    mode: Literal["auto", "required", "off"] = "auto"


class CoreSettings(Section):
    """Top-level paths."""

    model_config = SettingsConfigDict(env_prefix="LIVECTX_", frozen=True, extra="ignore")

    data_dir: Path | None = None
    feature_repo: Path | None = None
