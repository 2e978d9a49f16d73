"""The registry's state as a fold over its topic: apply records in offset order, get the latest per key.

Pure (no Kafka): the snapshot reader, the live view and the unit tests feed it the same records. A record
that does not decode is reported to the caller, never applied, so a bad write cannot retire a model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from livectx.models.version import ModelVersion, decode, parse_key


@dataclass
class RegistryState:
    """``active``: name -> the version agents should use; ``versions``: (name, version) -> every version."""

    active: dict[str, ModelVersion] = field(default_factory=dict)
    versions: dict[tuple[str, str], ModelVersion] = field(default_factory=dict)

    def apply(self, key: bytes | None, value: bytes | None) -> tuple[str, ModelVersion | None] | None:
        """Apply one record. Returns ``(name, new active version or None)`` when the active version of a
        name changed (activated, replaced or retired), else None.

        Raises:
            ModelRegistryError: the key or value is not of the registry's layout and schema.
        """
        from livectx.models.errors import ModelRegistryError

        if key is None:
            raise ModelRegistryError("registry record without a key")
        name, version = parse_key(key)
        record = decode(value) if value is not None else None
        if record is not None and (record.name != name or (version is not None and record.version != version)):
            raise ModelRegistryError(f"record of {record.ref} under the key {key.decode()!r}")
        if version is not None:
            if record is None:
                self.versions.pop((name, version), None)  # a purged version (not something livectx writes)
            else:
                self.versions[(name, version)] = record
            return None
        previous = self.active.get(name)
        if record is None:
            self.active.pop(name, None)
        else:
            self.active[name] = record
        return (name, record) if previous != record else None

    def resolve(self, name: str, version: str | None) -> ModelVersion | None:
        return self.active.get(name) if version is None else self.versions.get((name, version))
