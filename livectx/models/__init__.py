"""Model versions as data: a registry on a compacted Kafka topic, artifacts beside the archive.

See :mod:`livectx.models.registry` (register, activate, retire, resolve, list, load) and
:mod:`livectx.models.view` (a live view that agents follow).
"""

from livectx.models.errors import (
    ArtifactIntegrityError,
    DuplicateVersionError,
    ModelRegistryError,
    RegistryTimeout,
    UnknownModelError,
)
from livectx.models.registry import (
    activate,
    list_versions,
    load_artifact,
    register,
    resolve,
    retire,
    snapshot,
)
from livectx.models.version import ModelVersion, parse_ref
from livectx.models.view import RegistryView

__all__ = [
    "ArtifactIntegrityError",
    "DuplicateVersionError",
    "ModelRegistryError",
    "ModelVersion",
    "RegistryTimeout",
    "RegistryView",
    "UnknownModelError",
    "activate",
    "list_versions",
    "load_artifact",
    "parse_ref",
    "register",
    "resolve",
    "retire",
    "snapshot",
]
