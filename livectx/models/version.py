"""A model version as data: the record the registry topic carries, its keys, and its wire format.

A version is immutable once registered: the artifact it names is content-addressed by ``artifact_sha256``,
and its feature service and columns say exactly which inputs it was trained on, so a backtest years later
and the live agent today score the same model on the same inputs.

Key layout on the compacted topic (one partition keeps every key's history in order):

* ``<name>`` holds the **active** version of ``name`` (what agents follow); a tombstone retires it.
* ``<name>@<version>`` holds **every** registered version, so ``fraud:v1`` stays resolvable for backtests
  after ``fraud:v2`` is active, and after compaction removed the older ``<name>`` records.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from livectx import wire
from livectx.models.errors import ModelRegistryError

NAME_PATTERN = r"^[a-z][a-z0-9_.-]{0,63}$"
VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
VERSION_SEPARATOR = "@"  # in topic keys: ``fraud@v1``
REF_SEPARATOR = ":"  # for people and CLIs: ``fraud:v1``
SCHEMA_HEADER = "livectx-schema"


class ModelVersion(BaseModel):
    """One registered version of a model (or of a config: the artifact is then the config file).

    ``config`` is free-form JSON the consumer interprets (the fraud agent reads ``threshold`` from it);
    ``metrics`` are the figures the version was judged by when registered (names are up to the trainer).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    schema_name: ClassVar[str] = "model_version"
    schema_version: ClassVar[int] = 1

    name: str = Field(pattern=NAME_PATTERN)
    version: str = Field(pattern=VERSION_PATTERN)
    artifact_uri: str = Field(min_length=1)
    artifact_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    feature_service: str
    feature_columns: tuple[str, ...] = Field(min_length=1)
    training_start: AwareDatetime | None = None
    training_end: AwareDatetime | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    config: dict[str, Any] = Field(default_factory=dict)
    registered_at: AwareDatetime

    @field_validator("feature_service")
    @classmethod
    def _known_service(cls, value: str) -> str:
        from livectx.repo import current_repo

        services = current_repo().services
        if value not in services:
            raise ValueError(f"unknown feature service {value!r}; known: {', '.join(sorted(services))}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ModelVersion:
        served = set(service_features(self.feature_service))
        missing = [c for c in self.feature_columns if c not in served]
        if missing:
            raise ValueError(f"feature columns not in service {self.feature_service}: {', '.join(missing)}")
        if len(set(self.feature_columns)) != len(self.feature_columns):
            raise ValueError("feature columns repeat a name")
        if self.training_start and self.training_end and self.training_start > self.training_end:
            raise ValueError("training_start is after training_end")
        return self

    @property
    def ref(self) -> str:
        """``name:version``, how people and the backtest CLI name this version."""
        return f"{self.name}{REF_SEPARATOR}{self.version}"


def service_features(service: str) -> list[str]:
    """Every feature a feature service serves, in declaration order."""
    from livectx.repo import current_repo

    return [f.name for group in current_repo().service_groups(service) for f in group.features]


def default_columns(service: str) -> tuple[str, ...]:
    """The columns a model reads when the registrant names none: the service's declared model columns
    (its ``livectx.model_columns`` tag), else every feature of the service."""
    from livectx.repo import current_repo

    declared = current_repo().services[service].model_columns if service in current_repo().services else ()
    return declared or tuple(service_features(service))


def check_name(name: str) -> str:
    if not re.match(NAME_PATTERN, name):
        raise ModelRegistryError(
            f"bad model name {name!r}: use lower-case letters, digits, '_', '-', '.', starting with a letter"
        )
    return name


def check_version(version: str) -> str:
    if not re.match(VERSION_PATTERN, version):
        raise ModelRegistryError(f"bad version {version!r}: use letters, digits, '_', '-', '.' (e.g. v2, 2026-05-01)")
    return version


def parse_ref(ref: str) -> tuple[str, str | None]:
    """``"churn:v1"`` -> ``("churn", "v1")``; ``"churn"`` -> ``("churn", None)`` (the active version)."""
    name, sep, version = ref.partition(REF_SEPARATOR)
    check_name(name)
    if sep:
        check_version(version)
        return name, version
    return name, None


def active_key(name: str) -> bytes:
    return check_name(name).encode()


def version_key(name: str, version: str) -> bytes:
    return f"{check_name(name)}{VERSION_SEPARATOR}{check_version(version)}".encode()


def parse_key(key: bytes) -> tuple[str, str | None]:
    """A topic key back to ``(name, version)``; ``version`` is None for the active-version key.

    Raises:
        ModelRegistryError: the key is not of the registry's layout (not UTF-8, bad name or version).
    """
    try:
        text = key.decode()
    except UnicodeDecodeError:
        raise ModelRegistryError("registry key is not UTF-8") from None
    name, sep, version = text.partition(VERSION_SEPARATOR)
    check_name(name)
    return (name, check_version(version)) if sep else (name, None)


def schema_id() -> str:
    return f"{ModelVersion.schema_name}.v{ModelVersion.schema_version}"


def encode(record: ModelVersion) -> tuple[bytes, list[tuple[str, bytes]]]:
    """``(value, headers)`` of a record; the key depends on where it goes (:func:`active_key`, :func:`version_key`)."""
    return record.model_dump_json().encode(), [(SCHEMA_HEADER, schema_id().encode())]


def decode(value: bytes) -> ModelVersion:
    """Parse and validate a record value: JSON, plain or in the Confluent wire format (written with
    ``LIVECTX_SCHEMA_REGISTRY_PLATFORM_WIRE=confluent``; JSON never starts with the magic byte 0). The
    strict model is the reader either way, so a framed record needs no registry lookup to be read.

    Raises:
        ModelRegistryError: not JSON or not the schema; the message names the field.
    """
    if value[:1] == b"\0":
        value = value[wire.HEADER_SIZE :]  # the magic byte and the writer schema's id
    try:
        return ModelVersion.model_validate_json(value)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()[:5]
        )
        raise ModelRegistryError(f"{schema_id()} schema violation: {problems}") from None
