"""Whole-batch decoding of Avro records into Arrow columns: the feature engine's fast path for Avro sources.

fastavro, which :func:`livectx.serde.decode` uses per record, builds Python objects: about 4 µs a payment
record before pydantic validates it, twice the JSON fast path's whole cost. Arrow has no Avro reader, but
polars has one in Rust that decodes straight into Arrow memory (about 0.7 µs a record here, measured on
the example's payments). A batch is handed to it as one data block of an Avro object container file: the
file header is built once per writer schema, and the block is the records' payloads concatenated, so no
per-record Python work is done except slicing off a framed record's 5-byte header.

Like :mod:`livectx.serde_columns` it is *conservative*: a batch it accepts is one the per-record path
accepts with the same values, and anything else returns ``None`` so the caller decodes that batch record
by record (which dead-letters a bad record with its reason, or pauses on a registry outage). A block
hides record boundaries, so after decoding it checks them: every record's encoded length, computed from
its decoded values (zigzag varints, string lengths, fixed widths), must equal its own byte length, so no
value was read across a boundary. It also checks what polars reads more leniently or more strictly than
fastavro: a boolean byte other than 0 or 1 (fastavro reads any non-zero byte as true, polars only 1),
invalid UTF-8 or a short record (polars refuses, raising or panicking: the panic is caught), a timestamp
outside what a ``datetime`` holds. ``tests/unit/test_serde_avro_columns.py`` pins the equality on a
corpus of tricky records. polars marks ``read_avro`` unstable; the parity tests are what guard an upgrade.

Records of another writer schema (framed records of an older compatible version) are decoded with that
writer's schema and resolved to the declared one as Avro's rules say for flat records: a field the writer
lacks gets the reader's default, a field the reader lacks is dropped, ``int``/``long``/``float`` promote.
Only flat records of ``string``, ``boolean``, ``int``, ``long``, ``float``, ``double`` fields, with the
event time a ``long`` of ``timestamp-millis``/``-micros``, get a decoder; unions, enums and nested types
go record by record.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import AwareDatetime

from livectx import wire
from livectx.errors import RegistryUnavailable, SchemaError
from livectx.events import Event
from livectx.repo.schema import declared_checks
from livectx.serde_columns import CONSTRAINTS, EVENT_TIME_MS, holds, millis_of_micros

if TYPE_CHECKING:
    from livectx.wire import SchemaCache

_SYNC = b"livectx.columns!"  # any 16 bytes: the block's sync marker, written and read only here
_FIXED_WIDTH = {"double": 8, "float": 4, "boolean": 1}
_PROMOTIONS = {
    ("int", "long"),
    ("int", "float"),
    ("int", "double"),
    ("long", "float"),
    ("long", "double"),
    ("float", "double"),
}
_ARROW = {
    "string": pa.string(),
    "boolean": pa.bool_(),
    "int": pa.int64(),
    "long": pa.int64(),
    "double": pa.float64(),
    "float": pa.float64(),
}
_MODEL_TYPES = {str: ("string",), float: ("double", "float"), bool: ("boolean",)}
#: Event times within 2^53 µs of the epoch (years 1685 to 2255) are exact as float64, which
#: ``Event.event_time_ms``'s arithmetic goes through; others (and beyond datetime's years 1 to 9999, where
#: fastavro fails) go per record.
_MIN_US, _MAX_US = -(2**53), 2**53
_VARINT_STEPS = [1 << (7 * k - 1) for k in range(1, 10)]  # a >= 2^(7k-1) <=> zigzag(v) needs a (k+1)th byte


@dataclass(frozen=True)
class _Layout:
    """One writer schema's fields as the decoder reads them: ``(name, kind)`` in wire order, and the object
    container header that announces the schema to polars."""

    fields: tuple[tuple[str, str], ...]
    header: bytes
    defaults: dict[str, Any]


class AvroColumnDecoder:
    """Decodes batches of one Avro source's records into a ``pyarrow.Table`` (see the module doc): the
    model's fields in model order, ``event_time`` replaced by ``event_time_ms``, as the JSON decoder does."""

    def __init__(self, event_type: type[Event], reader: _Layout, outputs: list[tuple[str, str, str]]) -> None:
        self.event_type = event_type
        self._reader = reader
        #: ``(model field, wire field, kind)`` in model order.
        self._outputs = outputs
        self._checks = _checks_of(event_type)
        self._writers: dict[int, _Layout | None] = {}

    def decode(self, values: list[bytes | None], schemas: SchemaCache | None = None) -> pa.Table | None:
        """The batch as columns, or ``None`` when any record needs the per-record path. ``schemas``: the
        cache framed records' ids are looked up in (``None``: a framed record sends the batch per record)."""
        if not values or None in values:
            return None
        groups = _by_writer(values)  # type: ignore[arg-type]
        parts: list[pa.Table] = []
        for writer_id, rows in groups.items():
            layout = self._reader if writer_id is None else self._writer(writer_id, schemas)
            if layout is None:
                return None
            skip = 0 if writer_id is None else wire.HEADER_SIZE
            payloads = [values[i][skip:] for i in rows] if skip or len(groups) > 1 else values  # type: ignore[index]
            table = _read_block(payloads, layout)  # type: ignore[arg-type]
            if table is None:
                return None
            resolved = self._resolve(table, layout)
            if resolved is None:
                return None
            parts.append(resolved)
        table = parts[0] if len(parts) == 1 else _in_order(parts, list(groups.values()))
        for name, check, bound in self._checks:
            if not holds(table.column(name), check, bound):
                return None
        return table

    def _writer(self, writer_id: int, schemas: SchemaCache | None) -> _Layout | None:
        if writer_id in self._writers:
            return self._writers[writer_id]
        if schemas is None:
            return None
        try:
            writer = schemas.get(writer_id)
        except (SchemaError, RegistryUnavailable):
            return None  # not cached: the per-record path dead-letters the record or pauses at it
        layout = None
        if writer.schema_type == "AVRO":
            try:
                layout = layout_of(json.loads(writer.schema_str))
            except ValueError:
                layout = None
        self._writers[writer_id] = layout
        return layout

    def _resolve(self, table: pa.Table, writer: _Layout) -> pa.Table | None:
        """The writer's columns as the declared (reader) schema reads them, in model order, or ``None``."""
        kinds = dict(writer.fields)
        columns: list[pa.Array] = []
        names: list[str] = []
        for model_name, wire_name, kind in self._outputs:
            found = kinds.get(wire_name)
            if found is None:
                if wire_name not in self._reader.defaults:
                    return None
                value = self._reader.defaults[wire_name]
                if kind in ("ts-ms", "ts-us"):
                    return None
                columns.append(pa.array([value] * table.num_rows, _ARROW[kind]))
            elif kind in ("ts-ms", "ts-us"):
                if found != kind:
                    return None
                raw = pc.cast(table.column(wire_name), pa.int64())
                micros = raw if kind == "ts-us" else pc.multiply_checked(raw, 1000)
                if pc.min(micros).as_py() < _MIN_US or pc.max(micros).as_py() > _MAX_US:
                    return None
                columns.append(millis_of_micros(micros))
                model_name = EVENT_TIME_MS
            elif found == kind or (found, kind) in _PROMOTIONS:
                columns.append(pc.cast(table.column(wire_name), _ARROW[kind]))
            else:
                return None
            names.append(model_name)
        return pa.Table.from_arrays(columns, names=names)


def _by_writer(values: list[bytes]) -> dict[int | None, list[int]]:
    """Record positions by writer schema id (``None``: plain records, written with the declared schema).
    The common batches (all plain, all of one id) are told apart without a Python loop per record."""
    firsts = b"".join([v[:1] for v in values])
    if b"\0" not in firsts:
        return {None: list(range(len(values)))}
    heads = {v[: wire.HEADER_SIZE] for v in values}
    if len(heads) == 1 and firsts.count(b"\0") == len(values):
        return {int.from_bytes(next(iter(heads))[1:], "big"): list(range(len(values)))}
    groups: dict[int | None, list[int]] = {}
    for i, value in enumerate(values):
        writer_id = int.from_bytes(value[1 : wire.HEADER_SIZE], "big") if value[:1] == b"\0" else None
        groups.setdefault(writer_id, []).append(i)
    return groups


def _read_block(payloads: list[bytes], layout: _Layout) -> pa.Table | None:
    """The records decoded by polars from one container block, verified record by record, or ``None``."""
    import polars as pl
    from polars.exceptions import PanicException

    body = b"".join(payloads)
    block = layout.header + _varint(len(payloads)) + _varint(len(body)) + body + _SYNC
    try:
        frame = pl.read_avro(io.BytesIO(block))
    except (Exception, PanicException):  # invalid UTF-8, a short record (a Rust panic): per record
        return None
    # polars' own string layout (views) crosses to Arrow without a copy; the cast to plain strings, which
    # the rest of the engine reads, is one pass (polars' default conversion costs several times more).
    table = frame.to_arrow(compat_level=pl.CompatLevel.newest())
    table = table.cast(pa.schema([_plain(f) for f in table.schema]))
    if table.num_rows != len(payloads) or any(column.null_count for column in table.columns):
        return None
    lengths = np.zeros(len(payloads), np.int64)
    booleans: list[np.ndarray] = []  # each boolean field's byte offset within its record
    for name, kind in layout.fields:
        if kind == "boolean":
            booleans.append(lengths.copy())
        lengths += _encoded_lengths(table.column(name), kind)
    sizes = np.fromiter(map(len, payloads), np.int64, len(payloads))
    if not np.array_equal(lengths, sizes):
        return None  # some value was read across a record boundary: not what the records say
    if booleans:
        starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        raw = np.frombuffer(body, np.uint8)
        for offsets in booleans:
            if raw[starts + offsets].max(initial=0) > 1:
                return None
    return table


def _plain(field: pa.Field) -> pa.Field:
    if pa.types.is_string_view(field.type) or pa.types.is_large_string(field.type):
        return pa.field(field.name, pa.string())
    return field


def _encoded_lengths(column: pa.ChunkedArray, kind: str) -> np.ndarray:
    """Each value's length in Avro binary."""
    if kind in _FIXED_WIDTH:
        return np.full(len(column), _FIXED_WIDTH[kind], np.int64)
    if kind == "string":
        size = pc.binary_length(column).to_numpy().astype(np.int64)
        return size + _varint_lengths(size)
    return _varint_lengths(pc.cast(column, pa.int64()).to_numpy())  # int, long, timestamps


def _varint_lengths(values: np.ndarray) -> np.ndarray:
    """Bytes of each value's zigzag varint: zigzag(v) is 2a or 2a+1 for a = v or ~v, so the k-th extra byte
    is needed exactly when a >= 2^(7k-1)."""
    a = np.where(values < 0, ~values, values)
    lengths = np.ones(len(values), np.int64)
    for step in _VARINT_STEPS:
        lengths += a >= step
    return lengths


def _varint(n: int) -> bytes:
    zigzag, out = (n << 1) ^ (n >> 63), bytearray()
    while zigzag & ~0x7F:
        out.append((zigzag & 0x7F) | 0x80)
        zigzag >>= 7
    out.append(zigzag)
    return bytes(out)


def _avro_bytes(data: bytes) -> bytes:
    return _varint(len(data)) + data


def layout_of(schema: dict[str, Any]) -> _Layout | None:
    """The decoder's view of an Avro record schema, or ``None`` if it holds a type outside the fast path."""
    if not isinstance(schema, dict) or schema.get("type") != "record":
        return None
    fields: list[tuple[str, str]] = []
    defaults: dict[str, Any] = {}
    for field in schema.get("fields", []):
        kind = _kind(field.get("type"))
        if kind is None:
            return None
        fields.append((field["name"], kind))
        if "default" in field:
            defaults[field["name"]] = field["default"]
    # The schema polars is told holds names and types only: its parser refuses some legal attributes (a
    # boolean field's ``"default": false``), and defaults are applied here, in :meth:`_resolve`.
    bare = {"type": "record", "name": "R", "fields": [{"name": f["name"], "type": f["type"]} for f in schema["fields"]]}
    meta = {"avro.schema": json.dumps(bare).encode(), "avro.codec": b"null"}
    header = b"Obj\x01" + _varint(len(meta))
    header += b"".join(_avro_bytes(k.encode()) + _avro_bytes(v) for k, v in meta.items()) + _varint(0) + _SYNC
    return _Layout(tuple(fields), header, defaults)


def _kind(avro_type: Any) -> str | None:
    if isinstance(avro_type, str):
        return avro_type if avro_type in _ARROW else None
    if isinstance(avro_type, dict):
        logical = avro_type.get("logicalType")
        if logical is None:
            return _kind(avro_type.get("type"))
        if avro_type.get("type") == "long" and logical in ("timestamp-millis", "timestamp-micros"):
            return "ts-ms" if logical == "timestamp-millis" else "ts-us"
    return None


def _checkable(metadata: list[Any]) -> bool:
    return all(type(meta) in CONSTRAINTS for meta in metadata)


def _checks_of(event_type: type[Event]) -> list[tuple[str, str, Any]]:
    """``(column, check, bound)``: every float finite, then the declared value checks."""
    checks = [(name, "finite", None) for name, info in event_type.model_fields.items() if info.annotation is float]
    declared = declared_checks(event_type).items()
    return checks + [(name, check, bound) for name, rules in declared for check, bound in rules.items()]


def _in_order(parts: list[pa.Table], rows: list[list[int]]) -> pa.Table:
    """The groups' tables back in the batch's record order."""
    order = np.argsort(np.concatenate([np.asarray(r, np.int64) for r in rows]), kind="stable")
    return pa.concat_tables(parts).take(pa.array(order))


def avro_column_decoder(event_type: type[Event]) -> AvroColumnDecoder | None:
    """The batch decoder for an Avro source, or ``None`` if its schema or fields are outside what it checks."""
    reader = layout_of(getattr(event_type, "avro_schema", None) or {})
    if reader is None:
        return None
    kinds = dict(reader.fields)
    outputs: list[tuple[str, str, str]] = []
    for name, info in event_type.model_fields.items():
        wire_name = info.validation_alias if isinstance(info.validation_alias, str) else name
        kind = kinds.get(wire_name)
        if name == "event_time":
            if info.annotation is not AwareDatetime or info.metadata or kind not in ("ts-ms", "ts-us"):
                return None  # an ISO string or an epoch-ms long read by a validator: per record
        elif kind not in _MODEL_TYPES.get(info.annotation, ()) or not _checkable(info.metadata):  # type: ignore[arg-type]
            return None
        outputs.append((name, wire_name, kind))  # type: ignore[arg-type]
    if "event_time" not in event_type.model_fields:
        return None
    return AvroColumnDecoder(event_type, reader, outputs)
