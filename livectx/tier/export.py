"""Where ``livectx replay range`` writes: JSON lines on stdout, a ``.jsonl`` file or a ``.parquet`` file.

JSON lines show a record readably: ``key`` as UTF-8 text (base64 with ``key_b64`` when not UTF-8),
``value`` as the parsed JSON (else text, else base64 in ``value_b64``), header values likewise.
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

import orjson

from livectx.errors import LivectxError

if TYPE_CHECKING:
    import pyarrow as pa


class BatchSink(Protocol):
    def write(self, batch: pa.RecordBatch) -> None: ...
    def close(self) -> None: ...


def record_json(row: dict[str, Any]) -> dict[str, Any]:
    """One replayed row as a JSON-friendly dict (bytes decoded where they can be)."""
    out: dict[str, Any] = {
        "topic": row["topic"],
        "partition": row["partition"],
        "offset": row["offset"],
        "timestamp": row["timestamp"].isoformat(),
        "event_time": row["event_time"].isoformat(),
    }
    out.update(_bytes_field("key", row["key"], parse_json=False))
    out.update(_bytes_field("value", row["value"], parse_json=True))
    out["headers"] = [
        {"key": h["key"], **_bytes_field("value", h["value"], parse_json=False)} for h in row["headers"] or []
    ]
    return out


def _bytes_field(name: str, raw: bytes | None, *, parse_json: bool) -> dict[str, Any]:
    if raw is None:
        return {name: None}
    if parse_json:
        try:
            return {name: orjson.loads(raw)}
        except orjson.JSONDecodeError:
            pass
    try:
        return {name: raw.decode("utf-8")}
    except UnicodeDecodeError:
        return {f"{name}_b64": base64.b64encode(raw).decode()}


class JsonLinesSink:
    def __init__(self, handle: IO[bytes], owned: bool) -> None:
        self._handle = handle
        self._owned = owned

    def write(self, batch: pa.RecordBatch) -> None:
        for row in batch.to_pylist():
            self._handle.write(orjson.dumps(record_json(row)) + b"\n")

    def close(self) -> None:
        self._handle.flush()
        if self._owned:
            self._handle.close()


class ParquetSink:
    def __init__(self, path: Path) -> None:
        import pyarrow.parquet as pq

        from livectx.tier.layout import replay_schema

        self._writer = pq.ParquetWriter(path, replay_schema(), compression="zstd")

    def write(self, batch: pa.RecordBatch) -> None:
        self._writer.write_batch(batch)

    def close(self) -> None:
        self._writer.close()


def open_sink(path: Path | None) -> BatchSink:
    if path is None:
        return JsonLinesSink(sys.stdout.buffer, owned=False)
    if path.suffix == ".parquet":
        return ParquetSink(path)
    if path.suffix == ".jsonl":
        return JsonLinesSink(path.open("wb"), owned=True)
    raise LivectxError(f"--out {path}: use a .parquet or .jsonl file name")
