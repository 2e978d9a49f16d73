"""One error root for livectx, with messages that say how to fix the problem.

The CLI catches :class:`LivectxError` and prints its message as one readable line; anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations


class LivectxError(Exception):
    """Root of every error livectx raises on purpose. The message tells the user what to do."""


class ConfigError(LivectxError):
    """A setting or config file is invalid."""


class MissingPrerequisiteError(LivectxError):
    """A program the local stack needs (Java, Maven, redis-server) is not installed."""


class ServiceError(LivectxError):
    """A local service failed to start, stop or answer."""


class NotReachableError(LivectxError):
    """A configured service (Kafka, Redis) does not answer at its address."""


class RegistryUnavailable(NotReachableError):
    """The schema registry did not answer (or refused the credentials, or failed): a record framed with a
    schema id could not be read *for that reason*. Never a dead-letter reason: workers pause and retry."""


class SchemaError(LivectxError):
    """An event does not match its schema. The message names the field and the problem."""


class UnknownNameError(LivectxError):
    """A name given on the command line (scenario, benchmark, topic) is not known."""


class VectorStoreError(LivectxError):
    """The vector store refused an operation or is unreachable."""


class IndexMismatchError(VectorStoreError):
    """An index holds vectors of another embedding model or dimension: mixing them would be silent garbage."""


class WatermarkTimeout(LivectxError):
    """The vector index did not reach the requested source offset before the deadline."""


class CdcError(LivectxError):
    """Change data capture could not be set up or inspected (Connect's or Postgres' answer says why)."""
