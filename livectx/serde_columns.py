"""Whole-batch decoding of event records into Arrow columns: the streaming engine's fast path.

:func:`livectx.serde.decode` validates one record at a time with pydantic (about 5 µs a record, the
largest single cost of the feature engine). :class:`ColumnDecoder` parses a whole batch with Arrow's C++
JSON reader and checks the model's rules on the columns, about 1.5 µs a record.

It is deliberately *conservative*: it returns ``None`` for a batch holding anything the per-record path
might judge differently (a null, a duplicate key, a non-finite number, a timestamp outside strict RFC 3339,
an unusual byte), and the caller then decodes that batch record by record with :func:`livectx.serde.decode`,
which gives each bad record its dead-letter reason. So a batch it accepts is one pydantic would accept with
the same values; ``tests/unit/test_serde_columns.py`` pins that on a corpus of tricky records.

Records in the Confluent wire format (:mod:`livectx.wire`) are read the same way once their 5-byte header
is stripped, provided every schema id in the batch is a JSON schema the registry knows (looked up once per
id in the worker's cache; an unknown id, another type or a registry that does not answer sends the batch
to the per-record path, which dead-letters the record or pauses at it). Plain and framed records may be
mixed in one batch (a topic migrating).

Avro sources get :class:`~livectx.serde_avro_columns.AvroColumnDecoder` from :func:`column_decoder`, with
the same output and the same conservatism.

Only models made of ``str``, ``float``, ``bool`` and ``AwareDatetime`` fields, constrained at most by
``ge``/``gt``/``le``/``lt``/``min_length``/``max_length``, get a decoder (``column_decoder`` returns
``None`` otherwise); event times become ``event_time_ms`` computed exactly as ``Event.event_time_ms``.
"""

from __future__ import annotations

import io
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol

import annotated_types as at
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
from pydantic import AwareDatetime

from livectx import wire
from livectx.errors import RegistryUnavailable, SchemaError
from livectx.events import Event

if TYPE_CHECKING:
    from livectx.wire import SchemaCache

#: Strict RFC 3339 with an explicit offset and at most microseconds: what both parsers read identically.
_RFC3339 = (
    r"^[1-9]\d{3}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,6})?"
    r"(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$"
)
_ARROW_TYPES: dict[Any, pa.DataType] = {str: pa.string(), float: pa.float64(), bool: pa.bool_()}
EVENT_TIME_MS = "event_time_ms"


class ColumnDecoder:
    """Decodes batches of one event type's JSON records into a ``pyarrow.Table`` (see the module doc)."""

    def __init__(
        self,
        event_type: type[Event],
        schema: pa.Schema,
        checks: list[tuple[str, str, Any]],
        names: list[str] | None = None,
    ) -> None:
        self.event_type = event_type
        self._schema = schema
        #: The model's field names, in ``schema`` order, where the wire names differ (a declared
        #: ``timestamp_field`` other than ``event_time`` is the model's ``event_time``).
        self._names = names
        self._checks = checks
        self._parse = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error")
        self._read = pj.ReadOptions(use_threads=True, block_size=1 << 20)

    def decode(self, values: list[bytes | None], schemas: SchemaCache | None = None) -> pa.Table | None:
        """The batch as columns (model fields, ``event_time`` replaced by ``event_time_ms``), or ``None``
        when any record needs the per-record path. ``schemas``: the cache framed records' ids are looked
        up in (``None``: a framed record sends the batch to the per-record path)."""
        if not values or None in values:
            return None
        joined = b"\n".join(values)  # type: ignore[arg-type]
        if b"\0" in joined:  # JSON never holds a raw NUL: some record is framed (a C-speed scan)
            unframed = _unframed(values, schemas)  # type: ignore[arg-type]
            if unframed is None:
                return None
            joined = b"\n".join(unframed)
        n = len(values)
        # One record per line, each a compact object: the joins are exactly the n-1 "}\n{" sequences.
        if joined[:1] != b"{" or joined[-1:] != b"}" or joined.count(b"}\n{") != n - 1:
            return None
        if not joined.isascii():
            try:
                joined.decode()  # Arrow's reader lets invalid UTF-8 through; pydantic rejects it
            except UnicodeDecodeError:
                return None
        try:
            table = pj.read_json(io.BytesIO(joined), read_options=self._read, parse_options=self._parse)
        except (pa.ArrowInvalid, UnicodeDecodeError):
            return None
        if table.num_rows != n or any(column.null_count for column in table.columns):
            return None
        for name, check, bound in self._checks:
            if not holds(table.column(name), check, bound):
                return None
        if self._names is not None:
            table = table.rename_columns(self._names)
        try:
            stamps = pc.cast(table.column("event_time"), pa.timestamp("us", tz="UTC"))
        except pa.ArrowInvalid:
            return None
        millis = millis_of_micros(pc.cast(stamps, pa.int64()))
        index = table.schema.get_field_index("event_time")
        return table.set_column(index, EVENT_TIME_MS, millis)


def millis_of_micros(micros: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """``Event.event_time_ms`` of event times given in microseconds since the epoch, computed exactly as it
    does: ``int(datetime.timestamp() * 1000)``, float seconds times 1000, truncated."""
    seconds = pc.divide(pc.cast(micros, pa.float64()), 1e6)
    return pc.cast(pc.trunc(pc.multiply(seconds, 1000.0)), pa.int64())


def _unframed(values: list[bytes], schemas: SchemaCache | None) -> list[bytes] | None:
    """The JSON payloads of a batch (framed records' headers stripped), or ``None`` if a framed record's
    schema id is not a JSON schema the cache already holds (the per-record path then decides)."""
    if schemas is None:
        return None
    ids: set[bytes] = set()
    out = []
    for value in values:
        if value[:1] == b"\0":
            ids.add(value[1 : wire.HEADER_SIZE])
            out.append(value[wire.HEADER_SIZE :])
        else:
            out.append(value)
    for raw in ids:
        if len(raw) != 4:
            return None
        try:
            writer = schemas.get(int.from_bytes(raw, "big"))
        except (SchemaError, RegistryUnavailable):
            return None  # the per-record path dead-letters the record or pauses at it
        if writer.schema_type != "JSON":
            return None
    return out


def holds(column: pa.ChunkedArray, check: str, bound: Any) -> bool:
    match check:
        case "finite":
            return bool(pc.all(pc.is_finite(column)).as_py())
        case "rfc3339":
            return bool(pc.all(pc.match_substring_regex(column, _RFC3339)).as_py())
        case "ge":
            return bool(pc.all(pc.greater_equal(column, bound)).as_py())
        case "gt":
            return bool(pc.all(pc.greater(column, bound)).as_py())
        case "le":
            return bool(pc.all(pc.less_equal(column, bound)).as_py())
        case "lt":
            return bool(pc.all(pc.less(column, bound)).as_py())
        case "min_length":
            return bool(pc.all(pc.greater_equal(pc.utf8_length(column), bound)).as_py())
        case "max_length":
            return bool(pc.all(pc.less_equal(pc.utf8_length(column), bound)).as_py())
    raise ValueError(check)


CONSTRAINTS = {at.Ge: "ge", at.Gt: "gt", at.Le: "le", at.Lt: "lt", at.MinLen: "min_length", at.MaxLen: "max_length"}


class BatchDecoder(Protocol):
    """What the engine needs of a batch decoder: :class:`ColumnDecoder` (JSON) or
    :class:`~livectx.serde_avro_columns.AvroColumnDecoder`."""

    event_type: type[Event]

    def decode(self, values: list[bytes | None], schemas: SchemaCache | None = None) -> pa.Table | None: ...


@cache
def column_decoder(event_type: type[Event]) -> BatchDecoder | None:
    """The batch decoder for ``event_type``, or ``None`` if its fields are outside what it can check."""
    if getattr(event_type, "wire_format", "json") == "avro":
        from livectx.serde_avro_columns import avro_column_decoder

        return avro_column_decoder(event_type)
    fields: list[pa.Field] = []
    checks: list[tuple[str, str, Any]] = []
    names: list[str] = []
    for name, info in event_type.model_fields.items():
        annotation = info.annotation
        wire = info.validation_alias if isinstance(info.validation_alias, str) else name
        names.append(name)
        if annotation is AwareDatetime:
            if info.metadata:
                return None  # e.g. epoch milliseconds read by a validator
            fields.append(pa.field(wire, pa.string()))
            checks.append((wire, "rfc3339", None))
            continue
        if annotation not in _ARROW_TYPES:
            return None
        fields.append(pa.field(wire, _ARROW_TYPES[annotation]))
        if annotation is float:
            checks.append((wire, "finite", None))
        for meta in info.metadata:
            kind = CONSTRAINTS.get(type(meta))
            if kind is None:
                return None
            checks.append((wire, kind, getattr(meta, kind)))
    if "event_time" not in event_type.model_fields:
        return None
    renamed = names if [f.name for f in fields] != names else None
    return ColumnDecoder(event_type, pa.schema(fields), checks, renamed)
