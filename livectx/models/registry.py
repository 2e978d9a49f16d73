"""The model registry: model versions as records on a compacted Kafka topic, artifacts in the object store.

``register`` copies the artifact to ``<models url>/<name>/<version>/`` (sha256 recorded), then writes the
version under ``<name>@<version>`` and, unless told not to, under ``<name>`` (the active version that agents
follow). ``retire`` writes a tombstone on ``<name>``: agents fall back, a newly started agent sees no
active version, and every ``<name>@<version>`` record stays resolvable for backtests. Writes use the
idempotent producer with ``acks=all`` and wait for the broker's acknowledgement before returning.

Duplicate versions are refused by reading the topic first; two registrants racing on the same version
are not serialised (Kafka has no compare-and-set): register from one place (CI, a notebook, the CLI).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from livectx import topics
from livectx.kafka import producer
from livectx.models import artifacts
from livectx.models.errors import DuplicateVersionError, ModelRegistryError, UnknownModelError
from livectx.models.reader import read_all
from livectx.models.state import RegistryState
from livectx.models.version import (
    ModelVersion,
    active_key,
    check_name,
    check_version,
    default_columns,
    encode,
    parse_ref,
    version_key,
)
from livectx.settings import Settings

if TYPE_CHECKING:
    from confluent_kafka import Message

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 30.0


def snapshot(settings: Settings, topic: str = topics.MODELS, timeout_s: float = DEFAULT_TIMEOUT_S) -> RegistryState:
    """The registry as of now: the topic read from its beginning to its current end.

    Records that do not decode are logged with their position and skipped (they change nothing)."""
    state = RegistryState()

    def apply(message: Message) -> None:
        try:
            state.apply(message.key(), message.value())
        except ModelRegistryError as exc:
            log.warning("skipping %s-%d@%d: %s", message.topic(), message.partition(), message.offset(), exc)

    read_all(settings, topic, apply, timeout_s)
    return state


def register(
    settings: Settings,
    name: str,
    version: str,
    artifact_path: Path,
    *,
    feature_service: str | None = None,
    feature_columns: tuple[str, ...] | None = None,
    metrics: Mapping[str, float] | None = None,
    config: Mapping[str, Any] | None = None,
    training_start: datetime | None = None,
    training_end: datetime | None = None,
    activate: bool = True,
    topic: str = topics.MODELS,
) -> ModelVersion:
    """Register a new version (and make it the active one unless ``activate=False``). ``feature_service``
    defaults to the repo's only one.

    Raises:
        ModelRegistryError: a bad name, version, service or column, a missing or unloadable artifact.
        DuplicateVersionError: ``name:version`` is already registered.
    """
    from pydantic import ValidationError

    check_name(name)
    check_version(version)
    artifact_path = Path(artifact_path)
    if not artifact_path.is_file():
        raise ModelRegistryError(f"artifact {artifact_path} does not exist or is not a file")
    if feature_service is None:
        from livectx.repo import current_repo

        services = list(current_repo(settings).services)
        if len(services) != 1:
            raise ModelRegistryError(
                f"name the feature service the model reads; the repo declares {', '.join(services)}"
            )
        feature_service = services[0]
    try:
        record_fields = {
            "name": name,
            "version": version,
            "feature_service": feature_service,
            "feature_columns": tuple(feature_columns) if feature_columns else _columns_for(feature_service),
            "metrics": dict(metrics or {}),
            "config": dict(config or {}),
            "training_start": training_start,
            "training_end": training_end,
            "registered_at": datetime.now(UTC),
        }
        # Validate everything but the artifact fields before touching the store.
        ModelVersion.model_validate({**record_fields, "artifact_uri": "-", "artifact_sha256": "0" * 64})
    except ValidationError as exc:
        raise ModelRegistryError(f"cannot register {name}:{version}: {_first_problem(exc)}") from None
    artifacts.load_joblib(artifact_path.read_bytes(), str(artifact_path))  # refuse what no agent could load
    if snapshot(settings, topic).resolve(name, version) is not None:
        raise DuplicateVersionError(
            f"{name}:{version} is already registered (versions are immutable): register a new version"
        )
    uri = artifacts.artifact_uri(settings.models_url, name, version, artifact_path.name)
    sha = artifacts.upload(artifact_path, uri, settings.tier.storage_options)
    record = ModelVersion.model_validate({**record_fields, "artifact_uri": uri, "artifact_sha256": sha})
    keys = [version_key(name, version)] + ([active_key(name)] if activate else [])
    _publish(settings, topic, [(key, record) for key in keys])
    return record


def activate(settings: Settings, ref: str, *, topic: str = topics.MODELS) -> ModelVersion:
    """Make a registered version the active one (a rollback is ``activate(settings, "fraud:v1")``).

    Raises:
        UnknownModelError: no such version.
    """
    name, version = parse_ref(ref)
    if version is None:
        raise ModelRegistryError(f"name a version to activate, e.g. {name}:v1")
    record = resolve(settings, ref, topic=topic)
    _publish(settings, topic, [(active_key(name), record)])
    return record


def retire(settings: Settings, name: str, *, topic: str = topics.MODELS) -> ModelVersion:
    """Tombstone ``<name>``: agents following it fall back; its versions stay resolvable by ``name:version``.

    Returns the version that was active. Raises:
        UnknownModelError: ``name`` has no active version.
    """
    current = resolve(settings, check_name(name), topic=topic)
    _publish(settings, topic, [(active_key(name), None)])
    return current


def resolve(settings: Settings, ref: str, *, topic: str = topics.MODELS) -> ModelVersion:
    """``"churn"`` -> the active version; ``"churn:v1"`` -> that version, active or not.

    Raises:
        UnknownModelError: nothing registered under ``ref`` (or ``name`` retired).
    """
    name, version = parse_ref(ref)
    state = snapshot(settings, topic)
    record = state.resolve(name, version)
    if record is None:
        known = sorted(f"{n}:{v}" for n, v in state.versions if n == name)
        if version is None:
            hint = f"; its versions: {', '.join(known)}" if known else ""
            raise UnknownModelError(f"model {name} has no active version (never registered or retired){hint}")
        hint = f"; known: {', '.join(known)}" if known else ""
        raise UnknownModelError(f"model version {name}:{version} is not registered{hint}")
    return record


def list_versions(settings: Settings, name: str | None = None, *, topic: str = topics.MODELS) -> list[ModelVersion]:
    """Every registered version (of ``name``, or of all models), oldest registration first."""
    state = snapshot(settings, topic)
    found = [v for (n, _), v in state.versions.items() if name is None or n == name]
    return sorted(found, key=lambda v: (v.name, v.registered_at, v.version))


def load_artifact(settings: Settings, version: ModelVersion) -> Any:
    """The version's artifact, unpickled with joblib after its sha256 was verified.

    Raises:
        ArtifactIntegrityError: the stored bytes are not the registered ones.
        ModelRegistryError: unreadable or not a joblib file.
    """
    data = artifacts.read_verified(version.artifact_uri, version.artifact_sha256, settings.tier.storage_options)
    return artifacts.load_joblib(data, f"{version.ref} ({version.artifact_uri})")


def _columns_for(service: str) -> tuple[str, ...]:
    try:
        return default_columns(service)
    except KeyError:
        return ()  # the record's validation names the unknown service


def _publish(settings: Settings, topic: str, records: list[tuple[bytes, ModelVersion | None]]) -> None:
    """Produce and wait for every acknowledgement (``acks=all``, idempotent): returns only when durable."""
    failures: list[str] = []

    def delivered(err: Any, _msg: Any) -> None:
        if err is not None:
            failures.append(str(err))

    from livectx.schemas.platform import platform_encoder

    encoder = platform_encoder(settings)
    encoder.check()  # framed through the registry: its schema must be registered (`livectx schemas apply`)
    p = producer(settings, **{"linger.ms": 0})
    for key, record in records:
        value, headers = encode(record) if record is not None else (None, [])
        if record is not None:
            value = encoder.encode_value(record, topic)
        p.produce(topic, key=key, value=value, headers=headers, on_delivery=delivered)
    remaining = p.flush(DEFAULT_TIMEOUT_S)
    if failures or remaining:
        detail = failures[0] if failures else f"{remaining} records not acknowledged in {DEFAULT_TIMEOUT_S:g}s"
        raise ModelRegistryError(f"writing to the model registry topic {topic} failed: {detail}")


def _first_problem(exc: Any) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    message = str(err["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message
