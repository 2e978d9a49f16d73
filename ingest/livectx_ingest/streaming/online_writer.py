"""Writes feature rows straight into Feast's Redis layout, idempotently and never backwards.

Feast's push path costs ~50 µs a row; this writer pipelines rows with exactly Feast's encoding
(:class:`~livectx.features.redis_layout.FeastRedisLayout`, built on Feast's own helpers), so
``get_online_features`` reads what it wrote.

Each row carries a version ``(window start, source offset)``. A Lua script applies a row only if it is
newer than the stored version: same window and a later offset, or a later window that is the entity's
current window (``candidate``). Replays and retries therefore never double-count or move a value back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from livectx.features.redis_layout import (
    KEY_CACHE_LIMIT,
    FeastRedisLayout,
    encode_double,
    encode_int64,
    encode_timestamp,
)
from livectx.features.spec import FeatureGroup
from livectx_ingest.streaming.resp import bulk, command, hset

VERSION_FIELD = "_livectx_version:{view}"
#: On a Redis Cluster, the source offset an engine row is the result of (:data:`VERSIONED_ROWS`).
OFFSET_FIELD = "_livectx_offset:{view}"

# KEYS[1] hash; ARGV: version field, window start, offset, candidate, ttl seconds, then field/value pairs.
_CAS = """
local stored = redis.call('HGET', KEYS[1], ARGV[1])
local start, offset = tonumber(ARGV[2]), tonumber(ARGV[3])
if stored then
  local sep = string.find(stored, ':', 1, true)
  local s, o = tonumber(string.sub(stored, 1, sep - 1)), tonumber(string.sub(stored, sep + 1))
  if start < s or (start == s and offset <= o) or (start > s and ARGV[4] ~= '1') then return 0 end
elseif ARGV[4] ~= '1' then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. ARGV[3], unpack(ARGV, 6))
if tonumber(ARGV[5]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[5]) end
return 1
"""


def _memo_bulk(encode: Callable[[Any], bytes], limit: int = 100_000) -> Callable[[Any], bytes]:
    """``bulk(encode(value))``, memoised by value: counts, window ends and an entity's newest event time
    (shared by its views) repeat across a checkpoint's rows. Only for int-valued encodings: as dict keys
    ``0.0`` and ``-0.0`` are one, but their doubles are not."""
    cache: dict[Any, bytes] = {}

    def encoded(value: Any) -> bytes:
        found = cache.get(value)
        if found is None:
            if len(cache) >= limit:
                cache.clear()
            found = cache[value] = bulk(encode(value))
        return found

    return encoded


_bulk_int64 = _memo_bulk(encode_int64)
_bulk_timestamp = _memo_bulk(encode_timestamp)


def _bulk_double(value: Any) -> bytes:
    return bulk(encode_double(value))


@dataclass(frozen=True)
class Row:
    """One window update for one entity, as the engine emits it."""

    entity_id: str
    window_start_ms: int
    window_end_ms: int
    newest_event_ms: int
    offset: int
    candidate: bool
    values: dict[str, Any]


class RowFields:
    """A view's row as RESP field/value pairs for an ``HSET`` of the entity's Feast hash (every view of one
    entity shares that hash, so the engine writes all of an entity's views in one command).

    For the engine, whose checkpoints make writes exactly-once by committing offsets in the same Redis
    transaction (no per-row version check needed). Field names are encoded once per view; values through
    the memoised encoders; the write time once per checkpoint."""

    def __init__(self, layout: FeastRedisLayout) -> None:
        group = layout.group
        #: Per feature: name, its hash field and its value encoder, both already RESP bulk strings.
        self._features = [
            (f.name, bulk(layout.fields[f.name]), _bulk_int64 if f.name in layout.int_columns else _bulk_double)
            for f in group.features
        ]
        self._event_field, self._written_field, self._end_field = (
            bulk(layout.fields[n]) for n in group.metadata_fields
        )
        self._ts_field = bulk(layout.ts_field)
        self._written: tuple[int, bytes] = (-1, b"")  # the last write time's encoded pair (one per checkpoint)

    def fields(self, row: Any, written_ms: int) -> list[bytes]:
        """The hash fields of a :class:`~livectx.features.incremental.WindowRow`, as field/value pairs."""
        values = row.values
        parts = [field + encode(values.get(name)) for name, field, encode in self._features]
        if self._written[0] != written_ms:
            self._written = (written_ms, self._written_field + _bulk_int64(written_ms))
        newest = row.newest_event_ms
        parts += (
            self._event_field + _bulk_int64(newest),
            self._written[1],
            self._end_field + _bulk_int64(row.window_end_ms),
            self._ts_field + _bulk_timestamp(newest),
        )
        return parts


class ExpiryRefresh:
    """When an entity's hash needs its TTL set again: refreshed when a tenth of it is used up, not on every
    write (half the commands on a hot key). The TTL set is the ttl and a tenth, so a hash lives at least the
    ttl after its last write (and at most a tenth more): Redis memory follows the active entities by
    wall-clock time, besides the engine's event-time eviction of idle ones."""

    def __init__(self, ttl_s: int) -> None:
        self._ttl = ttl_s
        self._refresh_at: dict[str, int] = {}  # entity -> write time (ms) from which its TTL is set again

    def due(self, entity_id: str, written_ms: int) -> int:
        """The TTL (seconds) to set on the entity's hash now, or 0 (not due, or no ttl)."""
        if self._ttl <= 0 or written_ms < self._refresh_at.get(entity_id, 0):
            return 0
        if len(self._refresh_at) > KEY_CACHE_LIMIT:
            self._refresh_at.clear()
        self._refresh_at[entity_id] = written_ms + self._ttl * 100
        return self._ttl + -(-self._ttl // 10)


class FeastRedisWriter:
    """Encodes rows of one feature group for Feast's Redis online store and applies them with CAS."""

    def __init__(
        self,
        client: Any,
        project: str,
        group: FeatureGroup,
        entity_key_serialization_version: int = 3,
        ttl_seconds: int | None = None,
    ) -> None:
        self._client = client
        self._group = group
        self.layout = FeastRedisLayout(project, group, entity_key_serialization_version)
        self._ttl = int(group.ttl.total_seconds()) if ttl_seconds is None else ttl_seconds
        self._version_field = VERSION_FIELD.format(view=group.name)
        self.offset_field_name = OFFSET_FIELD.format(view=group.name).encode()
        self.offset_field = bulk(self.offset_field_name)
        self._script = client.register_script(_CAS)
        # The engine's path (:class:`RowWrites`): bound once, so a row costs one call each, as a method would.
        #: ``row_fields(row, written_ms)``: :meth:`RowFields.fields`.
        self.row_fields = RowFields(self.layout).fields
        #: ``expire_due(entity_id, written_ms)``: :meth:`ExpiryRefresh.due`.
        self.expire_due = ExpiryRefresh(self._ttl).due

    @property
    def hash_fields(self) -> list[bytes]:
        """The hash fields Feast's ``get_online_features`` reads for the group's features, then ``_ts``."""
        return [self.layout.fields[f.name] for f in self._group.features] + [self.layout.ts_field]

    def redis_key(self, entity_id: str) -> bytes:
        """Feast's key for the entity (serialised ``EntityKey`` + project)."""
        return self.layout.redis_key(entity_id)

    def stored_versions(self, entity_ids: Sequence[str]) -> dict[str, tuple[int, int] | None]:
        pipe = self._client.pipeline(transaction=False)
        for entity in entity_ids:
            pipe.hget(self.redis_key(entity), self._version_field)
        result = {}
        for entity, raw in zip(entity_ids, pipe.execute(), strict=True):
            if raw is None:
                result[entity] = None
            else:
                start, offset = raw.decode().split(":")
                result[entity] = (int(start), int(offset))
        return result

    def write(self, rows: Sequence[Row], written_ms: int) -> int:
        """Apply ``rows`` (at most one per entity is sensible); returns how many were newer and written."""
        if not rows:
            return 0
        pipe = self._client.pipeline(transaction=False)
        for row in rows:
            args: list[Any] = [
                self._version_field,
                row.window_start_ms,
                row.offset,
                "1" if row.candidate else "0",
                self._ttl,
            ]
            for name, value in self._encode(row, written_ms):
                args.extend((name, value))
            self._script(keys=[self.redis_key(row.entity_id)], args=args, client=pipe)
        return sum(int(x) for x in pipe.execute())

    def _encode(self, row: Row, written_ms: int) -> list[tuple[bytes, bytes]]:
        layout = self.layout
        event_ms, written_field, end_field = self._group.metadata_fields
        values = {**row.values, event_ms: row.newest_event_ms, written_field: written_ms, end_field: row.window_end_ms}
        encoded = [(field, layout.encode(name, values.get(name))) for name, field in layout.fields.items()]
        encoded.append((layout.ts_field, layout.encode_timestamp(row.newest_event_ms)))
        return encoded


class RowWrites:
    """One checkpoint's online rows as Redis commands: one ``HSET`` per entity hash, holding every view of
    the entity written (Feast keeps all of an entity's views in one hash), and the ``EXPIRE``s due.

    The engine adds rows as it walks its dirty entities; on one Redis the commands go into its checkpoint
    transaction beside state and offsets (:mod:`.checkpoint`). On a Redis Cluster the rows cannot share
    that transaction (they live on every shard), so each view's fields go with its version, the source
    offset the row is the result of, and are applied only over an older one (:meth:`versioned`,
    :mod:`.cluster_checkpoint`)."""

    def __init__(self, written_ms: int) -> None:
        self.written_ms = written_ms
        #: Feast key -> per view written: (its version field, the source offset, its field/value pairs).
        self._hashes: dict[bytes, list[tuple[bytes, int, list[bytes]]]] = {}
        self._ttls: dict[bytes, int] = {}
        self._removed: list[tuple[bytes, bytes]] = []  # (key, HDEL) of evicted entities' views

    def __len__(self) -> int:
        return len(self._hashes) + len(self._removed)

    def remove(self, writer: FeastRedisWriter, entity: str) -> None:
        """Delete the view's fields of ``entity`` (evicted as idle): Feast then reads nothing for it, and
        the hash goes once its last view is gone."""
        key = writer.layout.redis_key(entity)
        fields = [*writer.layout.fields.values(), writer.layout.ts_field, writer.offset_field_name]
        self._removed.append((key, command(b"HDEL", key, *fields)))

    def add(self, writer: FeastRedisWriter, entity: str, row: Any, offset: int = 0) -> None:
        """Add ``row`` of ``writer``'s view for ``entity``: the view's state as of source ``offset`` (the
        partition's next offset at this checkpoint)."""
        key = writer.layout.redis_key(entity)
        views = self._hashes.get(key)
        if views is None:
            self._hashes[key] = views = []
        views.append((writer.offset_field, offset, writer.row_fields(row, self.written_ms)))
        ttl = writer.expire_due(entity, self.written_ms)
        if ttl > self._ttls.get(key, 0):  # (0: not due; an EXPIRE 0 would delete the row)
            self._ttls[key] = ttl

    def commands(self) -> list[bytes]:
        """``HSET``s (every view of a hash in one) and ``EXPIRE``s, for one transaction with the offsets."""
        out = []
        for key, views in self._hashes.items():
            pairs = [pair for _field, _offset, view_pairs in views for pair in view_pairs]
            out.append(hset(key, pairs, len(pairs)))
        out += [command(b"EXPIRE", key, ttl) for key, ttl in self._ttls.items()]
        return out + [hdel for _key, hdel in self._removed]

    def removals(self) -> list[tuple[bytes, bytes]]:
        """``(key, HDEL)`` per evicted entity view, for a Cluster (each to the shard of its key)."""
        return list(self._removed)

    def versioned(self, sha: bytes) -> list[tuple[bytes, bytes]]:
        """``(key, EVALSHA of VERSIONED_ROWS)`` per entity hash: each view's fields applied only if its
        offset is newer than the one stored with them."""
        out = []
        for key, views in self._hashes.items():
            args = [bulk(b"%d" % self._ttls.get(key, 0))]
            for field, offset, pairs in views:
                args += (field, bulk(b"%d" % offset), bulk(b"%d" % (2 * len(pairs))), *pairs)
            head = b"*%d\r\n$7\r\nEVALSHA\r\n%s$1\r\n1\r\n%s" % (4 + _arg_count(views), bulk(sha), bulk(key))
            out.append((key, head + b"".join(args)))
        return out


def _arg_count(views: list[tuple[bytes, int, list[bytes]]]) -> int:
    """ARGV length of a :data:`VERSIONED_ROWS` call: the ttl, then per view 3 + a field and a value per pair
    (each element of ``pairs`` is one field/value pair, two bulk strings)."""
    return 1 + sum(3 + 2 * len(pairs) for _f, _o, pairs in views)


#: KEYS[1]: an entity's hash. ARGV[1]: TTL seconds to set (0: none due); then per view: its version field,
#: the row's source offset, the count n of the field/value arguments that follow, and those n arguments.
#: A view's fields are written only over an older offset, so a replayed or a fenced worker's row never
#: overwrites a newer one: the row at an offset is a function of the partition's records before it.
VERSIONED_ROWS = """
local i, wrote = 2, 0
while i <= #ARGV do
  local n = tonumber(ARGV[i + 2])
  local stored = redis.call('HGET', KEYS[1], ARGV[i])
  if not stored or tonumber(stored) < tonumber(ARGV[i + 1]) then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1], unpack(ARGV, i + 3, i + 2 + n))
    wrote = wrote + 1
  end
  i = i + 3 + n
end
if wrote > 0 and tonumber(ARGV[1]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return wrote
"""


def newest_per_entity(rows: Sequence[Row], stored: dict[str, tuple[int, int] | None]) -> list[Row]:
    """Apply the CAS rule locally, in order, to keep only the row per entity that would end up stored.

    Lets a batch of thousands of window updates become one write per entity."""
    version = dict(stored)
    final: dict[str, Row] = {}
    for row in rows:
        current = version.get(row.entity_id)
        if current is None:
            ok = row.candidate
        else:
            start, offset = current
            ok = (row.window_start_ms == start and row.offset > offset) or (
                row.window_start_ms > start and row.candidate
            )
        if ok:
            version[row.entity_id] = (row.window_start_ms, row.offset)
            final[row.entity_id] = row
    return list(final.values())
