"""``livectx cdc plan | apply | status | drop``: the repo's captured tables against Connect and Postgres.

``plan`` changes nothing; ``apply`` makes each declared table captured (replica identity, publication,
slot, then the connector's config: created, or updated when it differs); ``status`` reports the connector's
and its tasks' states, the slot's retained WAL and the age of the newest change on the topic, and warns when
retained WAL grew beyond ``LIVECTX_CDC_WAL_WARN_BYTES`` since the previous look (kept per slot under
``<state dir>/cdc``), because an abandoned slot fills the database's disk; ``drop`` stops the connector,
forgets its offsets (so a later ``apply`` snapshots afresh instead of resuming on a new slot), deletes it and
drops its slot and publication.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from livectx.cdc import database
from livectx.cdc.connector import ConnectClient, connector_config, shown
from livectx.errors import CdcError
from livectx.repo.cdc import CdcTable
from livectx.settings import Settings
from livectx.stack.process import wait_until


@dataclass
class TablePlan:
    table: CdcTable
    actions: list[str] = field(default_factory=list)
    changed_keys: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TableStatus:
    source: str
    connector: str
    connector_state: str
    task_states: tuple[str, ...]
    slot_active: bool | None
    retained_wal_bytes: int | None
    newest_change_age_s: float | None
    warning: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "task_states": list(self.task_states)}


def declared_tables(settings: Settings, names: tuple[str, ...] = ()) -> list[CdcTable]:
    from livectx.repo import current_repo

    tables = [s.cdc for s in current_repo(settings).sources.values() if s.cdc is not None]
    if names:
        unknown = set(names) - {t.source for t in tables}
        if unknown:
            raise CdcError(f"no cdc_source named {', '.join(sorted(unknown))} in the feature repo")
        tables = [t for t in tables if t.source in names]
    return tables


def plan(settings: Settings, tables: list[CdcTable]) -> list[TablePlan]:
    client = ConnectClient(settings.connect_url)
    plans = []
    try:
        for table in tables:
            entry = TablePlan(table)
            with database.connect(table, settings) as conn:
                state = database.inspect(conn, table)
            if not state.table_exists:
                entry.actions.append(f"table {table.qualified} missing in {table.database}: create it first")
            if not state.replica_identity_full:
                entry.actions.append(f"set replica identity of {table.qualified} to FULL")
            if not state.publication_exists:
                entry.actions.append(f"create publication {table.connector}")
            if not state.slot.exists:
                entry.actions.append(f"create replication slot {table.connector} (pgoutput)")
            wanted = connector_config(table, settings)
            current = client.config(table.connector)
            if current is None:
                entry.actions.append(f"create connector {table.connector} -> topic {table.topic} (initial snapshot)")
            else:
                current.pop("name", None)
                entry.changed_keys = sorted(k for k in set(wanted) | set(current) if wanted.get(k) != current.get(k))
                if entry.changed_keys:
                    entry.actions.append(f"update connector {table.connector}: {', '.join(entry.changed_keys)}")
            plans.append(entry)
    finally:
        client.close()
    return plans


def apply(settings: Settings, tables: list[CdcTable], timeout_s: float = 60.0) -> list[str]:
    """Make every table captured; waits until each connector's task runs. Returns what was done."""
    client = ConnectClient(settings.connect_url)
    done: list[str] = []
    try:
        for table in tables:
            with database.connect(table, settings) as conn:
                done += database.prepare(conn, table, database.inspect(conn, table))
            wanted = connector_config(table, settings)
            current = client.config(table.connector)
            if current is not None:
                current.pop("name", None)
            if current != wanted:
                client.put_config(table.connector, wanted)
                done.append(f"connector {table.connector} {'created' if current is None else 'updated'}")
            tasks = (client.status(table.connector) or {}).get("tasks") or []
            if any(t.get("state") == "FAILED" for t in tasks):
                client.restart(table.connector)  # a new config does not restart a failed task by itself
                done.append(f"connector {table.connector}: failed task restarted")
            _wait_running(client, table.connector, timeout_s)
    finally:
        client.close()
    return done


def _wait_running(client: ConnectClient, name: str, timeout_s: float, settle_s: float = 5.0) -> None:
    """Until the connector and every task run. A FAILED task ends the wait only after ``settle_s``: right
    after a restart Connect may still report the failure it is restarting from."""
    last: dict[str, Any] = {}
    settled = time.monotonic() + settle_s

    def running() -> bool:
        last.clear()
        last.update(client.status(name) or {})
        tasks = last.get("tasks") or []
        if any(t.get("state") == "FAILED" for t in tasks):
            return time.monotonic() > settled
        return (
            last.get("connector", {}).get("state") == "RUNNING"
            and bool(tasks)
            and all(t.get("state") == "RUNNING" for t in tasks)
        )

    ok = wait_until(running, timeout_s, 0.2)
    failed = [t for t in last.get("tasks") or [] if t.get("state") == "FAILED"]
    if failed or not ok:
        trace = (failed[0].get("trace") or "").strip().splitlines()[:1] if failed else []
        state = "failed" if failed else f"is not running after {timeout_s:.0f}s"
        raise CdcError(f"connector {name} {state}{': ' + trace[0] if trace else ''}; see `livectx stack logs connect`")


def status(settings: Settings, tables: list[CdcTable]) -> list[TableStatus]:
    client = ConnectClient(settings.connect_url)
    rows = []
    try:
        for table in tables:
            found = client.status(table.connector) or {}
            with database.connect(table, settings) as conn:
                slot = database.slot_state(conn, table.connector)
            retained = slot.retained_wal_bytes if slot.exists else None
            rows.append(
                TableStatus(
                    source=table.source,
                    connector=table.connector,
                    connector_state=found.get("connector", {}).get("state", "ABSENT"),
                    task_states=tuple(t.get("state", "?") for t in found.get("tasks") or []),
                    slot_active=slot.active if slot.exists else None,
                    retained_wal_bytes=retained,
                    newest_change_age_s=newest_change_age_s(settings, table.topic),
                    warning=_wal_warning(settings, table, retained),
                )
            )
    finally:
        client.close()
    return rows


def _wal_warning(settings: Settings, table: CdcTable, retained: int | None) -> str:
    """A warning when the slot retains more than the threshold and more than at the previous look."""
    history = Path(settings.stack.state_dir) / "cdc" / f"{table.connector}.wal.json"
    previous = None
    if history.is_file():
        previous = json.loads(history.read_text()).get("retained_wal_bytes")
    if retained is not None:
        history.parent.mkdir(parents=True, exist_ok=True)
        history.write_text(json.dumps({"retained_wal_bytes": retained, "at": time.time()}))
    if retained is None or previous is None or retained <= previous or retained < settings.cdc.wal_warn_bytes:
        return ""
    return (
        f"slot {table.connector} retains {retained} bytes of WAL and growing (was {previous}): the connector "
        "is not confirming changes; fix it or `livectx cdc drop` before the database's disk fills"
    )


def newest_change_age_s(settings: Settings, topic: str, timeout_s: float = 10.0) -> float | None:
    """Seconds since the newest record on ``topic`` was written (its Kafka timestamp); ``None`` if empty."""
    from confluent_kafka import Consumer, TopicPartition

    probe = Consumer(settings.kafka_config(**{"group.id": "livectx-cdc-probe", "enable.auto.commit": False}))
    try:
        metadata = probe.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return None
        last = []
        for partition in metadata.partitions:
            low, high = probe.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout_s, cached=False)
            if high > low:
                last.append(TopicPartition(topic, partition, high - 1))
        if not last:
            return None
        probe.assign(last)  # every partition's last record at once
        stamps: dict[int, int] = {}
        deadline = time.monotonic() + timeout_s
        while len(stamps) < len(last) and time.monotonic() < deadline:
            for message in probe.consume(len(last), 0.5):
                if message.error() is None:
                    stamps[message.partition()] = max(stamps.get(message.partition(), 0), message.timestamp()[1])
        return None if not stamps else max(0.0, time.time() - max(stamps.values()) / 1000)
    finally:
        probe.close()


def drop(settings: Settings, tables: list[CdcTable], timeout_s: float = 30.0) -> list[str]:
    client = ConnectClient(settings.connect_url)
    done: list[str] = []
    try:
        for table in tables:
            if client.status(table.connector) is not None:
                client.stop(table.connector)
                wait_until(lambda t=table: _stopped(client, t.connector), timeout_s, 0.2)
                client.delete_offsets(table.connector)
                client.delete(table.connector)
                done.append(f"connector {table.connector} stopped, its offsets forgotten, deleted")
            with database.connect(table, settings) as conn:
                wait_until(lambda c=conn, t=table: not database.slot_state(c, t.connector).active, timeout_s, 0.2)
                done += database.drop(conn, table)
    finally:
        client.close()
    return done


def _stopped(client: ConnectClient, name: str) -> bool:
    found = client.status(name) or {}
    return found.get("connector", {}).get("state") == "STOPPED"


def plan_as_dict(plans: list[TablePlan], settings: Settings) -> list[dict[str, Any]]:
    return [
        {
            "source": p.table.source,
            "connector": p.table.connector,
            "actions": p.actions,
            "config": shown(connector_config(p.table, settings)),
        }
        for p in plans
    ]
