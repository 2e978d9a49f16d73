"""The model registry's errors: each message says what to do about it."""

from __future__ import annotations

from livectx.errors import LivectxError


class ModelRegistryError(LivectxError):
    """Root of the registry's errors: bad input to ``register``/``retire``, an unusable registry topic."""


class UnknownModelError(ModelRegistryError):
    """No active version of that name, or no such version, in the registry."""


class DuplicateVersionError(ModelRegistryError):
    """The version is already registered: versions are immutable, register a new one instead."""


class ArtifactIntegrityError(ModelRegistryError):
    """An artifact's bytes do not hash to the sha256 its record promises: it was changed or truncated."""


class RegistryTimeout(ModelRegistryError):
    """The registry topic could not be read to its end (or a version did not arrive) before the deadline."""
