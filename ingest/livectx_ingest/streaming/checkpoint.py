"""Exactly-once checkpoints in the online store itself: window state, online rows and input offsets in one
Redis transaction, fenced per partition.

Why not Kafka transactions: the engine's output *is* Redis (Feast's online store), and a Kafka transaction
cannot include a Redis write. Committing the consumed offsets in the same ``MULTI``/``EXEC`` as the rows and
the state they produced makes the three move together: after a crash the worker resumes from the offsets
stored beside the state, so an event is counted exactly once whatever the moment of the crash. (This is
the "store offsets with the output" pattern of exactly-once sinks; Kafka's committed offsets are written
afterwards for lag monitoring only.)

Fencing: assigning a partition ``INCR``s its epoch; a commit ``WATCH``es the epochs of the partitions it
touches and aborts if any changed, so a worker that lost a partition in a rebalance (or a paused zombie)
can never overwrite its successor's state.

Rollback: a commit first reads the offsets the store holds and goes ahead only if they are the ones we
last committed (or this very commit's, when its reply was lost and it is being retried). Anything else
means the store went back in time (restarted from an older AOF or snapshot, or failed over to a replica
that had not seen our last commits): the commit raises :class:`RolledBack`, and the engine claims the
partitions again and resumes from what the store holds, state, rows and offsets being consistent there.
Connection errors are ridden out with backoff (:mod:`.store_outage`): every call here is safe to repeat.

Keys (one consumer group's): ``livectx:engine:<group>:epoch:<topic>:<p>``, ``...:offsets`` (hash
``<topic>:<p>`` -> next offset) and ``...:state:<topic>:<p>`` (hash ``<feature group>\\x1f<entity>`` -> state).
A Redis Cluster cannot run one transaction over keys of several slots: :mod:`.cluster_checkpoint`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol, TypeVar

from livectx.consuming import PartitionId
from livectx.errors import LivectxError
from livectx_ingest.streaming.online_writer import RowWrites
from livectx_ingest.streaming.resp import RawTransaction, bulk, command, hset
from livectx_ingest.streaming.store_outage import StoreOutage

T = TypeVar("T")
FIELD_SEP = "\x1f"


class FencedError(LivectxError):
    """Another worker took over one of our partitions: our uncommitted work must be dropped."""


class RolledBack(LivectxError):
    """The store holds older offsets (or no claim) for ``partitions`` than we committed: it went back in
    time. Nothing was written for them; claim them again and resume from what the store holds."""

    def __init__(self, message: str, partitions: list[PartitionId]) -> None:
        super().__init__(message)
        self.partitions = partitions


def verify(
    epoch: int, stored_epoch: bytes | None, committed: int | None, target: int, stored_offset: bytes | None
) -> str:
    """``"ok"``, ``"fenced"`` or ``"rolled back"``: may we commit a partition at ``target`` over what the store
    holds? Ours if the epoch is ours and the offset is our last commit (or ``target``: a retried commit)."""
    if stored_epoch is not None and int(stored_epoch) > epoch:
        return "fenced"
    if stored_epoch is None or int(stored_epoch) < epoch:
        return "rolled back"  # our claim is gone: the store restarted from before it
    offset = None if stored_offset is None else int(stored_offset)
    if offset in (committed, target):
        return "ok"
    if committed is not None and (offset is None or offset < committed):
        return "rolled back"
    return "fenced"


def raise_for(verdicts: Mapping[PartitionId, str]) -> None:
    """Raise :class:`FencedError` or :class:`RolledBack` for partitions whose verdict is not ``ok``."""
    fenced = [tp for tp, v in verdicts.items() if v == "fenced"]
    if fenced:
        raise FencedError(f"partitions {fenced} were taken over by another worker")
    behind = [tp for tp, v in verdicts.items() if v == "rolled back"]
    if behind:
        raise RolledBack(f"the online store lost our last commits of {behind} (it restarted from older data)", behind)


def state_commands(key: str, fields: Mapping[str, bytes | None]) -> list[bytes]:
    """``HSET`` of a partition's changed state entries and ``HDEL`` of its evicted ones (``None``)."""
    out = []
    pairs = [bulk(k.encode()) + bulk(v) for k, v in fields.items() if v is not None]
    if pairs:
        out.append(hset(key.encode(), pairs, len(pairs)))
    gone = [k for k, v in fields.items() if v is None]
    if gone:
        out.append(command("HDEL", key, *gone))
    return out


class Checkpoints(Protocol):
    """What the engine needs of a checkpoint store (:class:`RedisCheckpoints`, or on a Redis Cluster
    :class:`~.cluster_checkpoint.ClusterCheckpoints`)."""

    prefix: str

    def claim(self, tps: list[PartitionId]) -> dict[PartitionId, int]: ...

    def offsets(self, tps: list[PartitionId]) -> dict[PartitionId, int | None]: ...

    def state(self, tp: PartitionId) -> Iterator[tuple[str, str, bytes]]: ...

    def commit(
        self,
        epochs: Mapping[PartitionId, int],
        offsets: Mapping[PartitionId, int],
        committed: Mapping[PartitionId, int | None],
        state: Mapping[PartitionId, dict[str, bytes | None]],
        rows: RowWrites,
        *,
        fenced: bool = True,
    ) -> None: ...

    def state_keys(self, topic: str) -> list[str]: ...

    def drop_topic(self, topic: str) -> None: ...


def checkpoints_for(
    client: Any,
    consumer_group: str,
    outage: StoreOutage | None = None,
    crash_point: Callable[[str], None] | None = None,
) -> Checkpoints:
    """The checkpoint store for ``client``: one transaction on a Redis, per partition on a Cluster."""
    from redis.cluster import RedisCluster

    if isinstance(client, RedisCluster):
        from livectx_ingest.streaming.cluster_checkpoint import ClusterCheckpoints

        return ClusterCheckpoints(client, consumer_group, outage, crash_point)
    return RedisCheckpoints(client, consumer_group, outage)


class _PartitionStore:
    """What both stores do the same way: claim partitions and read a partition's state back, through
    ``_call`` (outage-riding) and their own key layout (``_epoch_key``, ``state_key``)."""

    _client: Any
    #: One ``MULTI`` for the claim's ``INCR``s where every key is on one server (a Cluster spreads them).
    _atomic_claim = True

    def _epoch_key(self, tp: PartitionId) -> str:
        raise NotImplementedError

    def state_key(self, tp: PartitionId) -> str:
        raise NotImplementedError

    def _call(self, operation: Callable[[], T]) -> T:
        raise NotImplementedError

    def claim(self, tps: list[PartitionId]) -> dict[PartitionId, int]:
        """Take ownership of ``tps``: bump their epochs (fencing out any previous owner) and return ours."""

        def incr() -> dict[PartitionId, int]:
            pipe = self._client.pipeline(transaction=self._atomic_claim)
            for tp in tps:
                pipe.incr(self._epoch_key(tp))
            return dict(zip(tps, (int(e) for e in pipe.execute()), strict=True))

        return self._call(incr)

    def state(self, tp: PartitionId) -> Iterator[tuple[str, str, bytes]]:
        """``(feature group, entity, state)`` for every entity of the partition (read whole: a restore
        interrupted by an outage starts over instead of mixing two reads)."""
        key = self.state_key(tp)
        entries = self._call(lambda: list(self._client.hscan_iter(key, count=5_000)))
        for field, value in entries:
            group, _, entity = field.decode().partition(FIELD_SEP)
            yield group, entity, value


class RedisCheckpoints(_PartitionStore):
    """Checkpoints on one Redis: rows, state and offsets of every partition in one transaction."""

    def __init__(self, client: Any, consumer_group: str, outage: StoreOutage | None = None) -> None:
        self._client = client
        self.prefix = f"livectx:engine:{consumer_group}"
        self._offsets_key = f"{self.prefix}:offsets"
        self._outage = outage or StoreOutage("Redis (checkpoints)")

    def _epoch_key(self, tp: PartitionId) -> str:
        return f"{self.prefix}:epoch:{tp[0]}:{tp[1]}"

    def state_key(self, tp: PartitionId) -> str:
        return f"{self.prefix}:state:{tp[0]}:{tp[1]}"

    def _call(self, operation: Callable[[], T]) -> T:
        return self._outage.call(operation)

    def offsets(self, tps: list[PartitionId]) -> dict[PartitionId, int | None]:
        """The next offset to process per partition, as of the last commit (``None``: never committed)."""
        if not tps:
            return {}
        raw = self._outage.call(lambda: self._client.hmget(self._offsets_key, [f"{t}:{p}" for t, p in tps]))
        return {tp: None if v is None else int(v) for tp, v in zip(tps, raw, strict=True)}

    def state_keys(self, topic: str) -> list[str]:
        """The state hashes of every partition of ``topic``."""
        return [text(k) for k in self._client.scan_iter(match=f"{self.prefix}:state:{topic}:*", count=1000)]

    def drop_topic(self, topic: str) -> None:
        """Delete every state hash and stored offset of ``topic``, and fence out its current owners."""
        for key in self.state_keys(topic):
            self._client.delete(key)
        for key in list(self._client.scan_iter(match=f"{self.prefix}:epoch:{topic}:*", count=1000)):
            self._client.incr(key)  # fences out a worker still running the old definitions
        stale = [f for f in self._client.hkeys(self._offsets_key) if text(f).rsplit(":", 1)[0] == topic]
        if stale:
            self._client.hdel(self._offsets_key, *stale)

    def commit(
        self,
        epochs: Mapping[PartitionId, int],
        offsets: Mapping[PartitionId, int],
        committed: Mapping[PartitionId, int | None],
        state: Mapping[PartitionId, dict[str, bytes | None]],
        rows: RowWrites,
        *,
        fenced: bool = True,
    ) -> None:
        """Write ``rows``, state (``None``: delete the entry) and offsets atomically, if the store holds our
        epochs and ``committed``.

        Raises:
            FencedError: an epoch changed (fenced): nothing was written.
            RolledBack: the store holds older offsets than ``committed``: nothing was written.
        """
        commands = rows.commands()
        for tp, fields in state.items():
            commands += state_commands(self.state_key(tp), fields)
        if offsets:
            pairs = [bulk(f"{t}:{p}".encode()) + bulk(b"%d" % o) for (t, p), o in offsets.items()]
            commands.append(hset(self._offsets_key.encode(), pairs, len(pairs)))
        self._outage.call(lambda: self._commit_once(epochs, offsets, committed, commands, fenced))

    def _commit_once(
        self,
        epochs: Mapping[PartitionId, int],
        offsets: Mapping[PartitionId, int],
        committed: Mapping[PartitionId, int | None],
        commands: list[bytes],
        fenced: bool,
    ) -> None:
        with RawTransaction(self._client) as tx:
            if not fenced:
                tx.execute(commands, atomic=False)
                return
            tps = list(epochs)
            read_offsets = command("HMGET", self._offsets_key, *(f"{t}:{p}" for t, p in tps))
            current, stored = tx.watch([self._epoch_key(tp) for tp in tps], also=read_offsets)
            verdicts = {
                tp: verify(epochs[tp], e, committed.get(tp), offsets[tp], o)
                for tp, e, o in zip(tps, current, stored, strict=True)
            }
            if any(v != "ok" for v in verdicts.values()):
                tx.unwatch()
                raise_for(verdicts)
            if tx.execute(commands) is None:
                raise FencedError("a partition epoch changed during the commit")


def text(value: bytes | str) -> str:
    """A Redis key or field as text (replies are bytes unless the client decodes them)."""
    return value.decode() if isinstance(value, bytes) else value
