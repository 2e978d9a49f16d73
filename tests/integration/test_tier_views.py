"""The archive as DuckDB views: typed event columns over the catalog's files, nothing copied."""

from __future__ import annotations

import duckdb

from livectx.kafka import producer
from livectx.tier.compaction import compact
from livectx.tier.duckdb_views import attach_archive
from tests.integration.kafka_helpers import create_topic
from tests.integration.test_archive import archive, produce, tier_settings


def test_views_expose_raw_and_typed_event_columns(stack, settings, unique, tmp_path) -> None:  # type: ignore[no-untyped-def]
    s = tier_settings(settings, tmp_path, file_max_records=60, compact_below_records=1000)
    topic = create_topic(settings, f"test.views.{unique}", partitions=2)
    produce(settings, topic, 300, partitions=2)
    p = producer(settings)
    p.produce(topic, key=b"bad", value=b"\xff\xfe not json", partition=0)  # archived raw, fields NULL
    p.produce(topic, key=b"gone", value=None, partition=1)  # a tombstone
    p.flush(10)
    archive(s, topic, f"g-{unique}")

    con = duckdb.connect()
    (name,) = attach_archive(con, s, [topic])
    assert name == topic.replace(".", "_").replace("-", "_")
    types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {name})").fetchall())
    assert {k: types[k] for k in ("partition", "offset", "timestamp", "event_time", "key", "value")} == {
        "partition": "INTEGER",
        "offset": "BIGINT",
        "timestamp": "TIMESTAMP WITH TIME ZONE",
        "event_time": "TIMESTAMP WITH TIME ZONE",
        "key": "BLOB",
        "value": "BLOB",
    }
    assert {k: types[k] for k in ("user_id", "amount", "merchant_id", "ip", "card_id", "is_fraud")} == {
        "user_id": "VARCHAR",
        "amount": "DOUBLE",
        "merchant_id": "VARCHAR",
        "ip": "VARCHAR",
        "card_id": "VARCHAR",
        "is_fraud": "BOOLEAN",
    }
    total, amount_sum, users, bad = con.execute(
        f"SELECT count(*), sum(amount), count(DISTINCT user_id), count(*) FILTER (WHERE amount IS NULL) FROM {name}"
    ).fetchone()
    assert (total, amount_sum, users, bad) == (302, sum(range(300)), 7, 2)
    # Point-in-time style query on the typed columns.
    latest = con.execute(
        f"SELECT user_id, max(event_time) FROM {name} WHERE user_id IS NOT NULL GROUP BY ALL ORDER BY 1"
    ).fetchall()
    assert len(latest) == 7

    # After compaction the views are re-attached over the new file list and return the same rows.
    before = con.execute(f'SELECT "offset", partition, amount FROM {name} ORDER BY 2, 1').fetchall()
    bigger = tier_settings(settings, tmp_path, file_max_records=1000, compact_below_records=1000)
    assert compact(bigger, [topic], orphan_grace_s=0).written_files > 0
    attach_archive(con, s, [topic])
    assert con.execute(f'SELECT "offset", partition, amount FROM {name} ORDER BY 2, 1').fetchall() == before
