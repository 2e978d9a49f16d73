"""The archive as DuckDB views: typed event columns over the catalog's files, nothing copied."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import duckdb

from livectx import serde, wire
from livectx.kafka import producer
from livectx.tier.compaction import compact
from livectx.tier.duckdb_views import attach_archive
from tests.example import Transaction
from tests.integration.kafka_helpers import create_topic
from tests.integration.test_archive import archive, produce, tier_settings


def _transaction(**fields: Any) -> Any:
    base = dict(
        event_time=datetime(2026, 3, 10, tzinfo=UTC), txn_id="tf", user_id="u", card_id="c", merchant_id="m",
        amount=1.0, currency="EUR", ip="10.0.0.1", country="DE",
    )  # fmt: skip
    return Transaction(**{**base, **fields})


def test_views_expose_raw_and_typed_event_columns(stack, settings, unique, tmp_path) -> None:  # type: ignore[no-untyped-def]
    s = tier_settings(settings, tmp_path, file_max_records=60, compact_below_records=1000)
    topic = create_topic(settings, f"test.views.{unique}", partitions=2)
    produce(settings, topic, 300, partitions=2)
    p = producer(settings)
    p.produce(topic, key=b"bad", value=b"\xff\xfe not json", partition=0)  # archived raw, fields NULL
    p.produce(topic, key=b"gone", value=None, partition=1)  # a tombstone
    # A record in the Confluent wire format (a topic moving to the registry): its 5-byte header is skipped.
    _key, framed_json, _headers = serde.encode(_transaction(user_id="u-framed", amount=1000.0))
    p.produce(topic, key=b"u-framed", value=wire.frame(7, framed_json), partition=0)
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
    assert (total, amount_sum, users, bad) == (303, sum(range(300)) + 1000, 8, 2)
    # Point-in-time style query on the typed columns.
    latest = con.execute(
        f"SELECT user_id, max(event_time) FROM {name} WHERE user_id IS NOT NULL GROUP BY ALL ORDER BY 1"
    ).fetchall()
    assert len(latest) == 8

    # After compaction the views are re-attached over the new file list and return the same rows.
    before = con.execute(f'SELECT "offset", partition, amount FROM {name} ORDER BY 2, 1').fetchall()
    bigger = tier_settings(settings, tmp_path, file_max_records=1000, compact_below_records=1000)
    assert compact(bigger, [topic], orphan_grace_s=0).written_files > 0
    attach_archive(con, s, [topic])
    assert con.execute(f'SELECT "offset", partition, amount FROM {name} ORDER BY 2, 1').fetchall() == before
