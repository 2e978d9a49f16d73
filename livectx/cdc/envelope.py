"""Debezium's change event envelope as the flat row a declared CDC source validates.

Debezium's JSON converter without schemas writes each change as
``{"before": {...} | null, "after": {...} | null, "source": {"ts_ms": ..., "lsn": ...}, "op": "c", "ts_ms": ...}``
(with schemas enabled, the same object under ``payload``). :func:`flatten` turns it into the row the source
declares plus the envelope's columns (:data:`livectx.repo.cdc.ENVELOPE_COLUMNS`):

- ``c`` (insert), ``r`` (snapshot read) and ``u`` (update): the ``after`` image, an upsert downstream;
- ``d`` (delete): the ``before`` image (complete with ``REPLICA IDENTITY FULL``, which ``cdc apply`` sets), so
  a consumer can retract the old row; the tombstone that follows is a null value, handled by the caller;
- ``cdc_ts``: the commit time, ``source.ts_ms`` (the envelope's own ``ts_ms`` is when Debezium saw it);
- ``cdc_lsn``: ``source.lsn``, the WAL position (orders two changes of one row).
"""

from __future__ import annotations

import json
from typing import Any

from livectx.errors import SchemaError

OPERATIONS = {"c", "r", "u", "d"}


def unwrap(event: Any) -> Any:
    """The change itself: a JSON converter with schemas wraps it as ``{"schema": ..., "payload": change}``."""
    if isinstance(event, dict) and "payload" in event and "schema" in event:
        return event["payload"]
    return event


def flatten(value: bytes) -> dict[str, Any]:
    """The row of one change event, with ``cdc_op``, ``cdc_ts`` and ``cdc_lsn``.

    Raises:
        SchemaError: not JSON, not an envelope, an unknown ``op``, or no row image for it (the
            dead-letter reason).
    """
    try:
        event = json.loads(value)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SchemaError(f"not JSON: {exc}") from None
    event = unwrap(event)
    if not isinstance(event, dict) or "op" not in event:
        raise SchemaError("not a Debezium change event: no 'op' field")
    op = event["op"]
    if op not in OPERATIONS:
        raise SchemaError(f"Debezium operation {op!r} is not one of c, r, u, d")
    row = event.get("before") if op == "d" else event.get("after")
    if not isinstance(row, dict):
        image = "before" if op == "d" else "after"
        raise SchemaError(f"Debezium {op!r} event without its {image!r} row image")
    source = event.get("source") or {}
    committed = source.get("ts_ms", event.get("ts_ms"))
    if not isinstance(committed, int):
        raise SchemaError("Debezium event without a commit timestamp (source.ts_ms)")
    return {**row, "cdc_op": op, "cdc_ts": committed, "cdc_lsn": source.get("lsn")}
