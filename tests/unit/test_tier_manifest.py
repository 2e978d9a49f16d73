"""The catalog's rules without Kafka: newer entries replace overlapping older ones, coverage and gaps,
compaction runs, vacuum, event-time decoding, the k-way merge and DuckDB types."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Literal

import pyarrow as pa
import pytest

from livectx.tier.compaction import small_runs
from livectx.tier.coverage import missing
from livectx.tier.duckdb_views import duckdb_type, event_columns
from livectx.tier.layout import archive_schema, data_path, view_name
from livectx.tier.manifest import Manifest, ManifestEntry, resolve
from livectx.tier.merge import merge_by_event_time
from livectx.tier.records import event_time_ms
from livectx.tier.storage import TierStorage


def entry(first: int, last: int, created: int, partition: int = 0, date: str = "2024-01-01", **kw) -> ManifestEntry:  # type: ignore[no-untyped-def]
    return ManifestEntry(
        topic="t", partition=partition, path=f"t/{first}-{last}-{created}.parquet", date=date, first_offset=first,
        last_offset=last, start_offset=kw.get("start", first), end_offset=kw.get("end", last + 1),
        records=kw.get("records", last - first + 1), min_event_ms=0, max_event_ms=0, min_timestamp_ms=0,
        max_timestamp_ms=0, bytes=1, created_ns=created, writer="test",
    )  # fmt: skip


def test_a_rewritten_range_replaces_every_overlapping_older_entry() -> None:
    old = [entry(0, 99, 1), entry(100, 199, 2), entry(200, 299, 3)]
    rewrite = entry(50, 249, 10)  # a re-written range after a crash, overlapping all three
    kept, replaced = resolve([*old, rewrite])
    assert kept == [rewrite] and sorted(replaced, key=lambda e: e.first_offset) == old
    # Compaction output replaces exactly its inputs; other partitions are untouched.
    merged = entry(0, 199, 20)
    other = entry(0, 99, 1, partition=1)
    kept, _ = resolve([*old, merged, other])
    assert [(e.partition, e.first_offset, e.last_offset) for e in kept] == [(0, 0, 199), (0, 200, 299), (1, 0, 99)]


#: A manifest entry as the archiver writes it, captured from the code that wrote the existing archives:
#: what is written must stay byte for byte this, and what was written must still load.
PINNED_ENTRY = (
    b'{"bytes": 4096, "created_ns": 1704157300000000000, "date": "2024-01-02", "end_offset": 201, '
    b'"first_offset": 100, "last_offset": 199, "max_event_ms": 1704157200000, "max_timestamp_ms": 1704157200500, '
    b'"min_event_ms": 1704153600000, "min_timestamp_ms": 1704153600500, "partition": 3, '
    b'"path": "payments/date=2024-01-02/3/00000000000000000100-00000000000000000199.parquet", "records": 100, '
    b'"schema": "livectx.archive.v1", "start_offset": 98, "topic": "payments", '
    b'"value_schemas": {"payments-value": 7}, "writer": "archiver-0"}'
)
#: The same without the fields that have defaults (an entry from before ``value_schemas`` existed).
PINNED_OLD_ENTRY = (
    b'{"bytes": 1, "created_ns": 1, "date": "2024-01-01", "end_offset": 1, "first_offset": 0, "last_offset": 0, '
    b'"max_event_ms": 0, "max_timestamp_ms": 0, "min_event_ms": 0, "min_timestamp_ms": 0, "partition": 0, '
    b'"path": "p", "records": 1, "start_offset": 0, "topic": "t", "writer": "w"}'
)


def test_the_serialised_entry_is_pinned() -> None:
    data_file = "payments/date=2024-01-02/3/00000000000000000100-00000000000000000199.parquet"
    sample = ManifestEntry(
        topic="payments", partition=3, path=data_file, date="2024-01-02", first_offset=100, last_offset=199,
        start_offset=98, end_offset=201, records=100,
        min_event_ms=1704153600000, max_event_ms=1704157200000, min_timestamp_ms=1704153600500,
        max_timestamp_ms=1704157200500, bytes=4096, created_ns=1704157300000000000, writer="archiver-0",
        value_schemas={"payments-value": 7},
    )  # fmt: skip
    assert sample.to_json() == PINNED_ENTRY
    assert ManifestEntry.from_json(PINNED_ENTRY) == sample
    assert ManifestEntry.from_json(PINNED_ENTRY).to_json() == PINNED_ENTRY
    listed_at = "_manifest/payments/3/01704157300000000000-00000000000000000100-00000000000000000199.json"
    assert sample.entry_path == listed_at
    old = ManifestEntry.from_json(PINNED_OLD_ENTRY)
    assert (old.schema, old.value_schemas, old.first_offset, old.end_offset) == ("livectx.archive.v1", {}, 0, 1)
    assert old.to_json() == (
        b'{"bytes": 1, "created_ns": 1, "date": "2024-01-01", "end_offset": 1, "first_offset": 0, "last_offset": 0, '
        b'"max_event_ms": 0, "max_timestamp_ms": 0, "min_event_ms": 0, "min_timestamp_ms": 0, "partition": 0, '
        b'"path": "p", "records": 1, "schema": "livectx.archive.v1", "start_offset": 0, "topic": "t", '
        b'"value_schemas": {}, "writer": "w"}'
    )


def test_coverage_gaps() -> None:
    assert missing((0, 100), [(0, 40), (40, 60), (70, 100)]) == [(60, 70)]
    assert missing((0, 100), [(10, 50), (50, 120)]) == [(0, 10)]
    assert missing((20, 30), [(0, 100)]) == []
    assert missing((0, 10), []) == [(0, 10)]


def test_compaction_merges_only_adjacent_small_files_of_one_date_without_gaps() -> None:
    entries = [
        entry(0, 9, 1), entry(10, 19, 2), entry(20, 29, 3, date="2024-01-02"), entry(30, 39, 4, date="2024-01-02"),
        entry(40, 49, 5, date="2024-01-02", start=45),  # a gap 40..44 before it: never merged across
        entry(50, 149, 6), entry(150, 159, 7), entry(160, 169, 8),
    ]  # fmt: skip
    runs = small_runs(entries, below=50, max_records=1000)
    assert [[e.first_offset for e in run] for run in runs] == [[0, 10], [20, 30], [150, 160]]
    assert small_runs(entries, below=50, max_records=15) == []  # no merged file may exceed max_records


def test_vacuum_deletes_replaced_and_unlisted_files_but_keeps_current_ones(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import fsspec

    storage = TierStorage(fsspec.filesystem("file"), str(tmp_path))
    manifest = Manifest(storage)
    old, new = entry(0, 9, 1), entry(0, 19, 2)
    for e in (old, new):
        storage.put_atomic(e.path, b"data")
        manifest.publish(e)
    storage.put_atomic("t/orphan.parquet", b"crashed before its entry")
    assert manifest.current("t") == [new] and manifest.topics() == ["t"]
    assert manifest.vacuum("t", orphan_grace_s=3600) == 2  # old data + old entry; the young orphan stays
    assert storage.find("t") == sorted([new.path, "t/orphan.parquet"])
    manifest.vacuum("t", orphan_grace_s=0)
    assert storage.find("t") == [new.path] and [e.path for e in manifest.all_entries("t")] == [new.path]


def test_event_time_falls_back_to_the_kafka_timestamp() -> None:
    assert event_time_ms(b'{"event_time": "2024-01-01T00:00:01Z"}', 5) == 1704067201000
    assert event_time_ms(b'{"event_time": "2024-01-01T00:00:01+01:00"}', 5) == 1704063601000
    for bad in (None, b"", b"\xff", b"[1]", b'{"event_time": 3}', b'{"event_time": "2024-01-01T00:00:01"}', b"{"):
        assert event_time_ms(bad, 5) == 5


def test_layout_names() -> None:
    assert data_path("livectx.transactions", 19723, 2, 5, 17) == (
        "livectx.transactions/date=2024-01-01/partition=2/00000000000000000005-00000000000000000017.parquet"
    )
    assert view_name("livectx.transactions") == "livectx_transactions" and view_name("a-b.c") == "a_b_c"


def _stream(partition: int, times: list[int], chunk: int = 2):  # type: ignore[no-untyped-def]
    schema = archive_schema()
    rows = {
        "partition": pa.array([partition] * len(times), pa.int32()),
        "offset": pa.array(range(len(times)), pa.int64()),
        "timestamp": pa.array(times, pa.int64()).cast(schema.field("timestamp").type),
        "event_time": pa.array(times, pa.int64()).cast(schema.field("event_time").type),
        "key": pa.nulls(len(times), pa.binary()),
        "value": pa.nulls(len(times), pa.binary()),
        "headers": pa.nulls(len(times), schema.field("headers").type),
    }
    table = pa.Table.from_pydict(rows, schema=schema)
    return iter(table.to_batches(max_chunksize=chunk))


def test_merge_by_event_time_keeps_partition_order_and_interleaves_by_time() -> None:
    streams = [_stream(0, [1, 3, 5, 4, 9]), _stream(1, [2, 2, 6]), _stream(2, [])]
    batches = list(merge_by_event_time(streams, batch_size=3))
    assert [b.num_rows for b in batches] == [3, 3, 2]
    merged = pa.Table.from_batches(batches)
    pairs = list(zip(merged["partition"].to_pylist(), merged["offset"].to_pylist(), strict=True))
    # The late event (time 4 after 5 in partition 0) keeps its place in its partition.
    assert pairs == [(0, 0), (1, 0), (1, 1), (0, 1), (0, 2), (0, 3), (1, 2), (0, 4)]


def _head_rule(streams: list[list[int]]) -> list[tuple[int, int]]:
    """The merge's definition, a row at a time: the next row comes from the stream whose head has the
    smallest event time (ties: the earlier stream)."""
    heads = [0] * len(streams)
    out = []
    while True:
        open_heads = [(times[heads[p]], p) for p, times in enumerate(streams) if heads[p] < len(times)]
        if not open_heads:
            return out
        _time, p = min(open_heads)
        out.append((p, heads[p]))
        heads[p] += 1


@pytest.mark.parametrize("seed", range(3))
def test_merge_by_event_time_follows_the_head_rule_on_random_streams(seed: int) -> None:
    """Late rows, ties, empty streams and batches, any batch size: the vectorised merge (which sorts by
    each stream's running maximum) emits the rows the head rule does, in batches of ``batch_size``."""
    rng = random.Random(seed)
    for _ in range(300):
        streams = []
        for _partition in range(rng.randint(1, 5)):
            times, now = [], 0
            for _row in range(rng.randint(0, 30)):
                now += rng.randint(0, 3)
                times.append(rng.randint(0, 25) if rng.random() < 0.2 else now)  # a fifth late (or early)
            streams.append(times)
        batch_size = rng.randint(1, 12)
        inputs = [_stream(p, times, chunk=rng.randint(1, 7)) for p, times in enumerate(streams)]
        batches = list(merge_by_event_time(inputs, batch_size=batch_size))
        expected = _head_rule(streams)
        assert [b.num_rows for b in batches] == [
            min(batch_size, len(expected) - i) for i in range(0, len(expected), batch_size)
        ]
        got = [
            (p, o) for b in batches for p, o in zip(b["partition"].to_pylist(), b["offset"].to_pylist(), strict=True)
        ]
        assert got == expected, (streams, batch_size)


def test_duckdb_types_follow_the_pydantic_fields() -> None:
    from livectx.events import Decision
    from tests.example import Login, Transaction

    assert duckdb_type(str) == "VARCHAR" and duckdb_type(float) == "DOUBLE" and duckdb_type(int) == "BIGINT"
    assert duckdb_type(bool) == "BOOLEAN" and duckdb_type(datetime) == "TIMESTAMPTZ"
    assert duckdb_type(str | None) == "VARCHAR" and duckdb_type(Literal["a", "b"]) == "VARCHAR"
    assert duckdb_type(list[str]) == "VARCHAR[]" and duckdb_type(float | None) == "DOUBLE"
    assert event_columns(Transaction)["amount"] == "DOUBLE" and "event_time" not in event_columns(Transaction)
    assert event_columns(Login)["success"] == "BOOLEAN"
    assert event_columns(Decision)["reasons"] == "VARCHAR[]"


@pytest.mark.parametrize("point", ["after-data", "after-manifest"])
def test_fault_points_fire_only_at_the_requested_occurrence(monkeypatch, point) -> None:  # type: ignore[no-untyped-def]
    from livectx.tier import faults

    monkeypatch.setenv(faults.ENV, f"{point}:2")
    monkeypatch.setattr(faults, "_hits", {})
    assert [faults.armed(point), faults.armed("other"), faults.armed(point), faults.armed(point)] == [
        False, False, True, False,
    ]  # fmt: skip
