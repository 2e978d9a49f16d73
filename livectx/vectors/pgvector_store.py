"""Postgres + pgvector backend: the default, started locally by ``livectx stack up``.

One table per index (``LIVECTX_VECTOR_INDEX``) with an HNSW index on cosine distance, plus a small
``livectx_vector_indexes`` table recording which embedding model and dimension each index holds.
Production points ``LIVECTX_VECTOR_PGVECTOR_DSN`` at any Postgres with pgvector (managed, replicas, Citus).

Two pgvector details that matter for correctness:
- Filtered HNSW search must allow an iterative scan (``hnsw.iterative_scan = relaxed_order``), otherwise
  the filter is applied after the candidate list and a query returns fewer than k rows.
- ``relaxed_order`` may return rows slightly out of order, so hits are re-sorted by distance here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from livectx.errors import IndexMismatchError, VectorStoreError
from livectx.settings import Settings
from livectx.vectors.records import SearchHit, VectorFilter, VectorRecord

META_TABLE = "livectx_vector_indexes"
_COLUMNS = "id, text, source, tenant, category, event_ms, metadata"
_COLUMNS_WRITTEN = 'id, embedding, text, source, tenant, category, event_ms, topic, "partition", "offset", metadata'


class PgVectorStore:
    name = "pgvector"

    def __init__(
        self, dsn: str, index: str, *, hnsw_m: int = 16, hnsw_ef_construction: int = 64, ef_search: int = 100
    ) -> None:
        self.dsn = dsn
        self.index = index
        self.hnsw_m = hnsw_m
        self.hnsw_ef_construction = hnsw_ef_construction
        self.ef_search = ef_search
        self._connection: Any = None

    @classmethod
    def from_settings(cls, settings: Settings, index: str | None = None) -> PgVectorStore:
        vector = settings.vector
        return cls(
            settings.pgvector_dsn,
            index or vector.index,
            hnsw_m=vector.hnsw_m,
            hnsw_ef_construction=vector.hnsw_ef_construction,
            ef_search=vector.ef_search,
        )

    def _conn(self) -> Any:
        import psycopg
        from pgvector.psycopg import register_vector

        if self._connection is not None and not self._connection.closed:
            return self._connection
        conn = None
        try:
            conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=5)
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")  # a managed Postgres may not have it yet
            register_vector(conn)
            conn.execute(f"SET hnsw.ef_search = {int(self.ef_search)}")
            conn.execute("SET hnsw.iterative_scan = relaxed_order")
        except psycopg.Error as exc:
            if conn is not None:
                conn.close()
            raise VectorStoreError(f"cannot connect to Postgres for the vector index: {exc}".strip()) from None
        self._connection = conn
        return conn

    def _run(self, fn: Any) -> Any:
        """Run ``fn(connection)``; connection-level failures become a retriable :class:`VectorStoreError`."""
        import psycopg

        try:
            return fn(self._conn())
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            if self._connection is not None:
                self._connection.close()
            self._connection = None
            raise VectorStoreError(f"Postgres vector index {self.index}: {exc}".strip()) from None

    def ensure_index(self, model: str, dim: int) -> None:
        def create(conn: Any) -> None:
            with conn.transaction():
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {META_TABLE} (name text PRIMARY KEY, model text NOT NULL, "
                    "dim int NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
                )
                conn.execute(
                    f"INSERT INTO {META_TABLE} (name, model, dim) VALUES (%s, %s, %s) ON CONFLICT (name) DO NOTHING",
                    (self.index, model, dim),
                )
                recorded = conn.execute(
                    f"SELECT model, dim FROM {META_TABLE} WHERE name = %s", (self.index,)
                ).fetchone()
                if tuple(recorded) != (model, dim):
                    raise IndexMismatchError(
                        f"vector index {self.index!r} holds {recorded[0]} vectors ({recorded[1]}-d), not {model} "
                        f"({dim}-d): set LIVECTX_VECTOR_INDEX to a new index and replay the text topics into it"
                    )
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {self.index} ("
                    f"id text PRIMARY KEY, embedding vector({int(dim)}) NOT NULL, text text NOT NULL, "
                    "source text NOT NULL, tenant text NOT NULL, category text, event_ms bigint NOT NULL, "
                    'topic text NOT NULL, "partition" int NOT NULL, "offset" bigint NOT NULL, '
                    "metadata jsonb NOT NULL DEFAULT '{}', written_at timestamptz NOT NULL DEFAULT now())"
                )
                conn.execute(self._hnsw_index_sql())
                conn.execute(f"CREATE INDEX IF NOT EXISTS {self.index}_tenant ON {self.index} (tenant, event_ms)")

        self._run(create)

    def upsert(self, records: Sequence[VectorRecord]) -> None:
        if not records:
            return
        rows = [_row(r) for r in records]
        sql = (
            f"INSERT INTO {self.index} ({_COLUMNS_WRITTEN}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (id) DO UPDATE SET "
            "embedding = EXCLUDED.embedding, text = EXCLUDED.text, source = EXCLUDED.source, "
            "tenant = EXCLUDED.tenant, category = EXCLUDED.category, event_ms = EXCLUDED.event_ms, "
            'topic = EXCLUDED.topic, "partition" = EXCLUDED."partition", "offset" = EXCLUDED."offset", '
            "metadata = EXCLUDED.metadata, written_at = now()"
        )

        def write(conn: Any) -> None:
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(sql, rows)

        self._run(write)

    def bulk_load(self, records: Iterable[VectorRecord]) -> None:
        """Backfill: binary COPY without the HNSW index, then build the index once.

        Far faster than row-by-row inserts into a live HNSW graph (about 500 rows/s per connection), for
        a first load or a re-embedding into a new index. The ids must not be in the index yet.
        """

        def load(conn: Any) -> None:
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(f"DROP INDEX IF EXISTS {self.index}_hnsw")  # rolled back with a failed COPY
                copy_sql = f"COPY {self.index} ({_COLUMNS_WRITTEN}) FROM STDIN WITH (FORMAT BINARY)"
                with cur.copy(copy_sql) as copy:
                    copy.set_types(
                        ["text", "vector", "text", "text", "text", "text", "int8", "text", "int4", "int8", "jsonb"]
                    )
                    for r in records:
                        copy.write_row(_row(r))
            conn.execute(self._hnsw_index_sql())

        self._run(load)

    def _hnsw_index_sql(self) -> str:
        return (
            f"CREATE INDEX IF NOT EXISTS {self.index}_hnsw ON {self.index} USING hnsw "
            f"(embedding vector_cosine_ops) WITH (m = {int(self.hnsw_m)}, "
            f"ef_construction = {int(self.hnsw_ef_construction)})"
        )

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            self._run(lambda conn: conn.execute(f"DELETE FROM {self.index} WHERE id = ANY(%s)", (list(ids),)))

    def search(self, vector: np.ndarray, top_k: int = 10, where: VectorFilter | None = None) -> list[SearchHit]:
        clauses, params = _where_sql(where or VectorFilter())
        query = np.asarray(vector, dtype=np.float32)
        sql = (
            f"SELECT {_COLUMNS}, embedding <=> %s AS distance FROM {self.index} {clauses} "
            "ORDER BY embedding <=> %s LIMIT %s"
        )
        rows = self._run(lambda conn: conn.execute(sql, [query, *params, query, top_k]).fetchall())
        rows.sort(key=lambda row: row[-1])
        return [
            SearchHit(
                id=row[0],
                score=1.0 - float(row[7]),
                text=row[1],
                source=row[2],
                tenant=row[3],
                category=row[4],
                event_ms=row[5],
                metadata=row[6],
            )
            for row in rows
        ]

    def count(self) -> int:
        return int(self._run(lambda conn: conn.execute(f"SELECT count(*) FROM {self.index}").fetchone()[0]))

    def drop(self) -> None:
        """Remove the index and its model record (tests and benchmarks)."""

        def drop(conn: Any) -> None:
            with conn.transaction():
                conn.execute(f"DROP TABLE IF EXISTS {self.index}")
                if conn.execute("SELECT to_regclass(%s)", (META_TABLE,)).fetchone()[0] is not None:
                    conn.execute(f"DELETE FROM {META_TABLE} WHERE name = %s", (self.index,))

        self._run(drop)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _row(r: VectorRecord) -> tuple[Any, ...]:
    """A record in the table's column order (``_COLUMNS_WRITTEN``)."""
    return (
        r.id,
        np.asarray(r.vector, dtype=np.float32),
        r.text,
        r.source,
        r.tenant,
        r.category,
        r.event_ms,
        r.topic,
        r.partition,
        r.offset,
        json.dumps(r.metadata),
    )


def _where_sql(where: VectorFilter) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if where.tenant is not None:
        clauses.append("tenant = %s")
        params.append(where.tenant)
    if where.categories:
        clauses.append("category = ANY(%s)")
        params.append(list(where.categories))
    if where.sources:
        clauses.append("source = ANY(%s)")
        params.append(list(where.sources))
    if where.since_ms is not None:
        clauses.append("event_ms >= %s")
        params.append(where.since_ms)
    if where.until_ms is not None:
        clauses.append("event_ms < %s")
        params.append(where.until_ms)
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params
