"""Reading the Confluent wire format: the 5-byte header, and the writer schemas its ids name, cached.

A record in the Confluent wire format is ``0x00`` (the magic byte), the writer schema's id in the registry
(4 bytes, big-endian), then the payload: Avro binary of that schema, or UTF-8 JSON for a JSON Schema.
livectx produces it with confluent-kafka's own serializers (:mod:`livectx.schemas.serializers`); reading
it is done here rather than with ``AvroDeserializer``/``JSONDeserializer`` because the workers need three
things those do not give:

- **Per-record detection**, so a topic can hold both formats while it migrates: a JSON record starts
  with ``{``, never with ``0x00``; a framed one always does (:func:`framed`).
- **The declared reader schema**: the workers validate with the source's strict model, and Avro records
  of an older writer are resolved to the declared schema (:mod:`livectx.serde`).
- **Two kinds of failure kept apart**: an id the registry does not know, or bytes that are not what it
  says, is the record's fault (a :class:`~livectx.errors.SchemaError`, dead-lettered with the reason); a
  registry that does not answer is not (a :class:`~livectx.errors.RegistryUnavailable`: the worker
  pauses at that record and retries, and nothing is dead-lettered or committed past it).

The header is parsed here by hand (two slices, no allocation beyond them) because the feature engine
reads it for every record on its hot path; confluent-kafka's ``dual_schema_id_deserializer`` does the same
work through a ``SchemaId`` object and a ``BytesIO`` per record.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from livectx.errors import RegistryUnavailable, SchemaError

MAGIC = 0
HEADER_SIZE = 5
#: How long an id the registry said it does not know stays known-unknown: a flood of records with a bad id
#: must not become a flood of registry requests, and an id is never reused for another schema.
UNKNOWN_TTL_S = 60.0


def framed(value: bytes | None) -> bool:
    """Whether ``value`` is in the Confluent wire format (magic byte, then at least a 4-byte schema id)."""
    return value is not None and len(value) >= HEADER_SIZE and value[0] == MAGIC


def split(value: bytes) -> tuple[int, bytes]:
    """``(schema id, payload)`` of a framed record.

    Raises:
        SchemaError: the value is too short to hold the header, or its first byte is not the magic byte.
    """
    if len(value) < HEADER_SIZE or value[0] != MAGIC:
        raise SchemaError(
            f"not the Confluent wire format: expected magic byte 0 and a 4-byte schema id, got "
            f"{len(value)} bytes starting {value[:HEADER_SIZE].hex() or 'with nothing'}"
        )
    return int.from_bytes(value[1:HEADER_SIZE], "big"), value[HEADER_SIZE:]


def frame(schema_id: int, payload: bytes) -> bytes:
    """A framed record (what confluent-kafka's serializers write; tests use it to forge records)."""
    return bytes([MAGIC]) + schema_id.to_bytes(4, "big") + payload


@dataclass(frozen=True)
class WriterSchema:
    """A registered schema, as a reader of records framed with its id needs it."""

    schema_id: int
    schema_type: str  # "AVRO" | "JSON" | "PROTOBUF" (the registry's names)
    schema_str: str
    #: fastavro's parsed form (Avro only), parsed once per id.
    parsed: Any = None


class SchemaLookup(Protocol):
    """What :class:`SchemaCache` needs of a registry client (``SchemaRegistryClient`` has it)."""

    def get_schema(self, schema_id: int) -> Any:
        """The schema registered under ``schema_id``: an object with ``schema_str`` and ``schema_type``."""
        ...


class SchemaCache:
    """Writer schemas by id, fetched from the registry once each (thread-safe; ids are immutable).

    ``get`` raises :class:`SchemaError` for an id the registry does not know (remembered for
    ``UNKNOWN_TTL_S``) and :class:`RegistryUnavailable` when the registry does not answer, refuses the
    credentials or fails (5xx): those are never cached, so the next call asks again."""

    def __init__(
        self,
        client: SchemaLookup,
        *,
        url: str = "the schema registry",
        unknown_ttl_s: float = UNKNOWN_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._url = url
        self._unknown_ttl_s = unknown_ttl_s
        self._clock = clock
        self._known: dict[int, WriterSchema] = {}
        self._unknown: dict[int, float] = {}
        self._lock = threading.Lock()
        self.requests = 0  # registry round trips made (tests and metrics)

    @classmethod
    def from_settings(cls, settings: Any) -> SchemaCache:
        """A cache over ``SchemaRegistryClient`` with the settings' URL and credentials. The client does not
        retry: a worker's own pause-and-retry (:class:`RegistryPause`) decides how long to wait."""
        from confluent_kafka.schema_registry import SchemaRegistryClient

        config = {**settings.schema_registry_config(), "max.retries": 0, "timeout": 5}
        return cls(SchemaRegistryClient(config), url=settings.schema_registry_url)

    def get(self, schema_id: int) -> WriterSchema:
        found = self._known.get(schema_id)
        if found is not None:
            return found
        with self._lock:
            found = self._known.get(schema_id)
            if found is not None:
                return found
            until = self._unknown.get(schema_id)
            if until is not None and self._clock() < until:
                raise SchemaError(self._unknown_reason(schema_id))
            found = self._fetch(schema_id)
            self._known[schema_id] = found
            self._unknown.pop(schema_id, None)
            return found

    def known(self, schema_id: int) -> WriterSchema | None:
        """The cached schema of ``schema_id``, without asking the registry (the columnar fast path)."""
        return self._known.get(schema_id)

    def _fetch(self, schema_id: int) -> WriterSchema:
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        self.requests += 1
        try:
            schema = self._client.get_schema(schema_id)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                self._unknown[schema_id] = self._clock() + self._unknown_ttl_s
                raise SchemaError(self._unknown_reason(schema_id)) from None
            if exc.http_status_code in (401, 403):
                raise RegistryUnavailable(
                    f"{self._url} refused the credentials (HTTP {exc.http_status_code}): check "
                    "LIVECTX_SCHEMA_REGISTRY_USER / LIVECTX_SCHEMA_REGISTRY_PASSWORD"
                ) from None
            raise RegistryUnavailable(
                f"{self._url} answered {exc.http_status_code} for schema id {schema_id}: {exc.error_message}"
            ) from None
        except Exception as exc:  # httpx's connect/read errors, timeouts, a registry restarting
            raise RegistryUnavailable(f"{self._url} does not answer ({type(exc).__name__})") from None
        schema_type = (getattr(schema, "schema_type", None) or "AVRO").upper()
        parsed = _parse_avro(schema_id, schema.schema_str) if schema_type == "AVRO" else None
        return WriterSchema(schema_id, schema_type, schema.schema_str, parsed)

    def _unknown_reason(self, schema_id: int) -> str:
        return f"unknown schema id {schema_id}: the schema registry has no schema with this id"


def _parse_avro(schema_id: int, schema_str: str) -> Any:
    import fastavro

    try:
        return fastavro.parse_schema(json.loads(schema_str))
    except Exception as exc:  # a registered schema fastavro cannot read is every such record's problem
        raise SchemaError(f"schema id {schema_id}: cannot read its Avro schema ({type(exc).__name__}: {exc})") from None


_default: SchemaCache | None = None
_default_lock = threading.Lock()


def default_cache() -> SchemaCache:
    """The process-wide cache over the configured registry, for decoders not given one (agents, backtests,
    tools); workers pass their own."""
    global _default
    with _default_lock:
        if _default is None:
            from livectx.settings import get_settings

            _default = SchemaCache.from_settings(get_settings())
        return _default


def reset_default_cache() -> None:
    """Forget the process-wide cache (the settings changed)."""
    global _default
    with _default_lock:
        _default = None


class RegistryPause:
    """A worker's pause while the registry does not answer: a growing, bounded wait between retries, and
    one log line when the pause starts, one every ``log_every_s`` while it lasts, one when it ends."""

    def __init__(
        self,
        log: Any,
        *,
        first_s: float = 0.1,
        max_s: float = 5.0,
        log_every_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = log
        self._first_s, self._max_s, self._log_every_s = first_s, max_s, log_every_s
        self._clock = clock
        self._delay = 0.0
        self._since: float | None = None
        self._logged_at = 0.0
        self.pauses = 0  # times a pause started
        self.retries = 0  # waits while paused

    @property
    def paused(self) -> bool:
        return self._since is not None

    def wait_s(self, reason: str, where: str) -> float:
        """A record could not be decoded because of the registry: how long to wait before the retry."""
        now = self._clock()
        if self._since is None:
            self._since, self._logged_at, self._delay = now, now, self._first_s
            self.pauses += 1
            self._log.warning(
                "schema registry unavailable: %s; pausing at %s (nothing is dead-lettered or committed past it), "
                "retrying with a backoff up to %.0f s",
                reason,
                where,
                self._max_s,
            )
        else:
            self._delay = min(self._max_s, self._delay * 2)
            if now - self._logged_at >= self._log_every_s:
                self._logged_at = now
                self._log.warning("schema registry still unavailable after %.0f s: %s", now - self._since, reason)
        self.retries += 1
        return self._delay

    def resumed(self) -> None:
        """Records decode again (call after a batch that needed no pause)."""
        if self._since is not None:
            self._log.warning("schema registry answers again after %.1f s: resuming", self._clock() - self._since)
            self._since, self._delay = None, 0.0
