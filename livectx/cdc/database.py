"""The Postgres side of capturing a table: publication, replication slot, replica identity, slot health.

``cdc apply`` creates the publication (this table only) and the logical replication slot (``pgoutput``)
itself rather than letting Debezium do it, so ``cdc plan`` can show them and ``cdc drop`` removes both: an
abandoned slot makes Postgres keep WAL for it forever. It sets ``REPLICA IDENTITY FULL`` on the table, so an
update's and a delete's ``before`` image is the whole old row (what a feature view needs to retract it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import sql

from livectx.errors import CdcError
from livectx.repo.cdc import CdcTable
from livectx.settings import Settings


@dataclass(frozen=True)
class SlotState:
    """A replication slot as ``pg_replication_slots`` sees it."""

    exists: bool
    active: bool = False
    retained_wal_bytes: int = 0
    confirmed_flush_lsn: str | None = None


@dataclass(frozen=True)
class TableState:
    table_exists: bool
    replica_identity_full: bool
    publication_exists: bool
    slot: SlotState


def connect(table: CdcTable, settings: Settings) -> Any:
    import psycopg

    db = settings.cdc_database(table.database)
    try:
        return psycopg.connect(
            host=db["host"], port=db["port"], user=db["user"], password=db["password"] or None,
            dbname=db["dbname"], autocommit=True, connect_timeout=5,
        )  # fmt: skip
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CdcError(
            f"database {table.database} at {db['host']}:{db['port']} is not reachable ({first}): run "
            "`livectx stack up` or set LIVECTX_CDC_DATABASE_HOST / _PORT / _USER / _PASSWORD"
        ) from None


def inspect(conn: Any, table: CdcTable) -> TableState:
    row = conn.execute(
        "SELECT c.relreplident FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p')",
        (table.schema, table.table),
    ).fetchone()
    publication = conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (table.connector,)).fetchone()
    return TableState(
        table_exists=row is not None,
        replica_identity_full=row is not None and row[0] == "f",
        publication_exists=publication is not None,
        slot=slot_state(conn, table.connector),
    )


def slot_state(conn: Any, slot: str) -> SlotState:
    row = conn.execute(
        "SELECT active, COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint, "
        "confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s",
        (slot,),
    ).fetchone()
    if row is None:
        return SlotState(exists=False)
    return SlotState(True, bool(row[0]), int(row[1]), row[2])


def prepare(conn: Any, table: CdcTable, state: TableState) -> list[str]:
    """Create what is missing; returns what was done (empty when all was in place)."""
    done = []
    name = sql.Identifier(table.schema, table.table)
    if not state.table_exists:
        raise CdcError(f"table {table.qualified} does not exist in database {table.database}: create it first")
    if not state.replica_identity_full:
        conn.execute(sql.SQL("ALTER TABLE {} REPLICA IDENTITY FULL").format(name))
        done.append(f"replica identity of {table.qualified} set to FULL")
    if not state.publication_exists:
        conn.execute(sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(sql.Identifier(table.connector), name))
        done.append(f"publication {table.connector} created")
    if not state.slot.exists:
        conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (table.connector,))
        done.append(f"replication slot {table.connector} created (pgoutput)")
    return done


def drop(conn: Any, table: CdcTable) -> list[str]:
    """Drop the slot (it must be inactive: stop the connector first) and the publication."""
    done = []
    slot = slot_state(conn, table.connector)
    if slot.exists:
        if slot.active:  # the connector's task lets go of it a moment after being stopped
            conn.execute(
                "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = %s",
                (table.connector,),
            )
        conn.execute("SELECT pg_drop_replication_slot(%s)", (table.connector,))
        done.append(f"replication slot {table.connector} dropped")
    if conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (table.connector,)).fetchone():
        conn.execute(sql.SQL("DROP PUBLICATION {}").format(sql.Identifier(table.connector)))
        done.append(f"publication {table.connector} dropped")
    return done


def run_sql(settings: Settings, database: str, text: str) -> list[str]:
    """Run ``text`` (one or more statements) in ``database``; returns each result's status and rows."""
    import psycopg

    probe = CdcTable("sql", "", database, "public", "sql", "", (), 1)
    lines = []
    with connect(probe, settings) as conn:
        try:
            cursor = conn.execute(text)
        except psycopg.Error as exc:
            raise CdcError(f"SQL failed in {database}: {str(exc).strip().splitlines()[0]}") from None
        while True:
            if cursor.description is not None:
                lines += ["\t".join(str(v) for v in row) for row in cursor.fetchall()]
            lines.append(cursor.statusmessage or "")
            if not cursor.nextset():
                break
    return [line for line in lines if line]
