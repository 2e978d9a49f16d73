"""Exactly-once checkpoints on a Redis Cluster, where one transaction cannot span the shards.

The single-Redis checkpoint (:mod:`.checkpoint`) commits rows, window state and offsets in one
``MULTI``. On a Cluster, Feast's row keys hash to every slot, so that transaction is impossible. The
commit is split in two, in this order:

1. **Rows, versioned and idempotent.** Each view's fields in an entity's hash are written together with
   the source offset they are the result of (the partition's next offset at this checkpoint), by a Lua
   script that applies them only over an older offset (:data:`~.online_writer.VERSIONED_ROWS`). One
   script call per entity hash, pipelined per shard.
2. **State and offsets, per partition, fenced.** A partition's epoch, state hash and offset share a hash
   tag (``{<topic>:<p>}``), so they live in one slot and commit in one ``WATCH``/``MULTI`` on its shard,
   conditional on our epoch and on the store holding the offset we last committed.

Why this is exactly-once:

- A row's value at offset ``o`` is a function of the partition's records before ``o`` only (per-entity
  event-time windows; the engine is deterministic), whoever computes it. So rows written by a
  checkpoint whose state never committed (a crash between 1 and 2), or by a fenced zombie, are the very
  values the owner computes again when it reaches ``o``: never wrong, only early.
- The version rule makes a row move only forward: a restarted worker that resumes from an older
  committed offset re-derives older rows and they are skipped, so readers never see a value go back.
- State and offsets commit together per partition and are fenced by its epoch exactly as on one Redis;
  after a crash the worker resumes from them, so every record is applied to the state once.
- Partitions are independent (an entity's records are in one partition per source), so a checkpoint
  whose partitions commit one after the other is as good as one that commits them at once.

What it does not cover: a Cluster failover to a replica that missed acknowledged writes (Redis
replication is asynchronous) is detected by the offset check, like a rollback, and resumed from; rows
ahead of that state are harmless by the argument above.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from livectx_ingest.streaming.checkpoint import (
    FencedError,
    PartitionId,
    T,
    _PartitionStore,
    raise_for,
    state_commands,
    text,
    verify,
)
from livectx_ingest.streaming.online_writer import VERSIONED_ROWS, RowWrites
from livectx_ingest.streaming.resp import RawTransaction, ResponseError, command
from livectx_ingest.streaming.store_outage import StoreOutage

#: Redirections and a node that lost its scripts (restarted): refresh, reload, write the rows again.
_RETRY_KINDS = {"MovedError", "AskError", "NoScriptError", "TryAgainError", "ClusterDownError"}


class SlotsMoved(Exception):
    """A shard answered for a slot it no longer owns (a failover or resharding), or without our script
    (it restarted): refresh the slot map and retry."""


class ClusterCheckpoints(_PartitionStore):
    """Checkpoints on a Redis Cluster (module docstring). ``client``: a ``redis.cluster.RedisCluster``."""

    _atomic_claim = False

    def __init__(
        self,
        client: Any,
        consumer_group: str,
        outage: StoreOutage | None = None,
        crash_point: Callable[[str], None] | None = None,
    ) -> None:
        """``crash_point(phase)``: the engine's fault hook, reached at ``rows-written`` (rows written, no
        state or offset committed yet), the moment only a Cluster has."""
        self._crash_point = crash_point or (lambda _phase: None)
        self._client = client
        self.prefix = f"livectx:engine:{consumer_group}"
        self._outage = outage or StoreOutage("Redis Cluster (checkpoints)")
        self._sha = b""

    # -- keys: one hash tag per partition ---------------------------------------------------------------

    def _epoch_key(self, tp: PartitionId) -> str:
        return f"{self.prefix}:epoch:{{{tp[0]}:{tp[1]}}}"

    def _offset_key(self, tp: PartitionId) -> str:
        return f"{self.prefix}:offset:{{{tp[0]}:{tp[1]}}}"

    def state_key(self, tp: PartitionId) -> str:
        return f"{self.prefix}:state:{{{tp[0]}:{tp[1]}}}"

    # -- ownership and restore ----------------------------------------------------------------------------

    def offsets(self, tps: list[PartitionId]) -> dict[PartitionId, int | None]:
        if not tps:
            return {}

        def read() -> list[Any]:
            pipe = self._client.pipeline(transaction=False)
            for tp in tps:
                pipe.get(self._offset_key(tp))
            return pipe.execute()

        raw = self._call(read)
        return {tp: None if v is None else int(v) for tp, v in zip(tps, raw, strict=True)}

    def state_keys(self, topic: str) -> list[str]:
        pattern = f"{self.prefix}:state:{{{topic}:*"
        return sorted({text(k) for k in self._client.scan_iter(match=pattern, count=1000)})

    def drop_topic(self, topic: str) -> None:
        """Delete ``topic``'s state and offsets and fence out its owners (a rebuild from the log)."""
        for kind in ("state", "offset"):
            for key in list(self._client.scan_iter(match=f"{self.prefix}:{kind}:{{{topic}:*", count=1000)):
                self._client.delete(key)
        for key in list(self._client.scan_iter(match=f"{self.prefix}:epoch:{{{topic}:*", count=1000)):
            self._client.incr(key)

    # -- commit -------------------------------------------------------------------------------------------

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
        """Rows first (versioned), then each partition's state and offset (fenced); module docstring.

        Raises:
            FencedError / RolledBack: for the partitions concerned, after the others committed.
        """
        if len(rows):
            self._call(lambda: self._write_rows(rows))
            self._crash_point("rows-written")
        verdicts = {}
        for tp, target in offsets.items():
            commands = state_commands(self.state_key(tp), state.get(tp) or {})
            commands.append(command("SET", self._offset_key(tp), target))
            verdicts[tp] = self._call(
                lambda tp=tp, commands=commands: self._commit_partition(
                    tp, epochs[tp], committed.get(tp), offsets[tp], commands, fenced
                )
            )
        raise_for(verdicts)

    def _commit_partition(
        self, tp: PartitionId, epoch: int, committed: int | None, target: int, commands: list[bytes], fenced: bool
    ) -> str:
        node = self._node_client(self._epoch_key(tp))
        try:
            with RawTransaction(node) as tx:
                if not fenced:
                    tx.execute(commands, atomic=False)
                    return "ok"
                (stored_epoch, stored_offset), _ = tx.watch([self._epoch_key(tp), self._offset_key(tp)])
                verdict = verify(epoch, stored_epoch, committed, target, stored_offset)
                if verdict != "ok":
                    tx.unwatch()
                    return verdict
                if tx.execute(commands) is None:
                    raise FencedError(f"the epoch of {tp} changed during the commit")
                return "ok"
        except ResponseError as exc:
            if exc.kind in _RETRY_KINDS:
                raise SlotsMoved(str(exc)) from None
            raise

    def _write_rows(self, rows: RowWrites) -> None:
        """Every entity hash's versioned write, pipelined per shard; a shard's redirection or lost script
        makes the whole write retry (it is idempotent)."""
        if not self._sha:
            self._sha = self._client.script_load(VERSIONED_ROWS).encode()
        by_node: dict[str, tuple[Any, list[bytes]]] = {}
        for key, call in [*rows.versioned(self._sha), *rows.removals()]:
            node = self._client.get_node_from_key(key)
            entry = by_node.get(node.name)
            if entry is None:
                entry = by_node[node.name] = (self._client.get_redis_connection(node), [])
            entry[1].append(call)
        for client, calls in by_node.values():
            with RawTransaction(client) as tx:
                replies = tx.pipeline(calls)
            failed = [r for r in replies if isinstance(r, ResponseError)]
            if failed:
                if any(r.kind in _RETRY_KINDS for r in failed):
                    self._sha = b""  # a restarted node: load the script again (SCRIPT LOAD reaches all primaries)
                    raise SlotsMoved(str(failed[0]))
                raise failed[0]

    def _call(self, operation: Callable[[], T]) -> T:
        """``operation()``, riding out outages and moved slots (each operation here is safe to repeat)."""
        return self._outage.call(operation, on_retry=self._refresh, also=(SlotsMoved,))

    def _node_client(self, key: str) -> Any:
        return self._client.get_redis_connection(self._client.get_node_from_key(key))

    def _refresh(self) -> None:
        """After an outage or a redirection: re-read the slot map (a failover or a resharding moved slots)."""
        self._sha = b""
        self._client.nodes_manager.initialize()
