"""The engine's record applier without services: Debezium changes into a table view's state (tombstones,
re-sends, bad records to the dead-letter side output), and offsets that never apply a record twice."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from feast import Entity, ValueType
from feast.data_format import JsonFormat
from livectx_ingest.streaming.apply import RecordApplier, plan_sources

from livectx.repo.cdc import cdc_source, table_view
from livectx.repo.compile import compile_source, compile_table_view
from livectx.repo.declare import agg, count


@dataclass
class Record:
    """What the applier reads of a confluent_kafka Message."""

    _offset: int
    _value: bytes | None
    _topic: str = "x.reviews"

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes | None:
        return self._value

    def timestamp(self) -> tuple[int, int]:
        return (1, 0)

    def error(self) -> None:
        return None


class Recorded:
    """A side output (dead letters, late events) that keeps what it was given."""

    def __init__(self) -> None:
        self.published: list[tuple[Any, ...]] = []

    def publish(self, *args: Any) -> None:
        self.published.append(args)


def _applier() -> tuple[RecordApplier, Recorded, Any]:
    schema = JsonFormat("review_id STRING, product_id STRING DEFAULT NULL, rating INT DEFAULT NULL")
    source = cdc_source(name="reviews", table="reviews", topic="x.reviews", schema=schema, key="review_id")
    product = Entity(name="product", join_keys=["product_id"], value_type=ValueType.STRING)
    view = table_view(
        name="stats", source=source, entity=product, features=[count("n"), agg("mean_rating", "mean", "rating")]
    )
    table = compile_table_view(view, compile_source(source, "review_id"))
    dead = Recorded()
    sources = plan_sources([], [table], {}, columnar=True)
    applier = RecordApplier(
        sources, dead_letters=dead, late=Recorded(), offline=None, schemas=None,  # type: ignore[arg-type]
        columnar_min=1, crash_point=lambda phase: None, crash_armed=False,
    )  # fmt: skip
    return applier, dead, table


def _change(op: str, lsn: int, before: dict | None, after: dict | None) -> bytes:
    source = {"ts_ms": 1_796_000_000_000 + lsn, "lsn": lsn}
    return json.dumps({"op": op, "before": before, "after": after, "source": source}).encode()


def test_changes_tombstones_and_a_bad_record_move_the_offset_and_the_state() -> None:
    applier, dead, table = _applier()
    assert applier.sources["x.reviews"].decoder is None  # a changelog never takes the columnar path
    part = applier.sources["x.reviews"].new_partition(epoch=1, next_offset=None)
    r1 = {"review_id": "r1", "product_id": "p1", "rating": 4}
    records = [
        Record(0, _change("c", 10, None, r1)),
        Record(1, _change("u", 11, r1, {**r1, "rating": 2})),
        Record(2, b"{not json"),
        Record(3, _change("d", 12, {**r1, "rating": 2}, None)),
        Record(4, None),  # Debezium's tombstone after the delete
        Record(5, _change("c", 13, None, {**r1, "review_id": "r2", "rating": 5})),
    ]
    held = applier.apply(records[:2], {("x.reviews", 0): part})
    assert held.messages == [] and part.next_offset == 2
    assert part.tables["stats"].row("p1", table.features).values == {"n": 1, "mean_rating": 2.0}
    assert part.dirty["stats"] == {"p1"} and part.tables["stats"].dirty == {"r1"}
    applier.apply(records, {("x.reviews", 0): part})  # a re-delivery from offset 0: 0 and 1 are not applied again
    assert part.next_offset == 6 and applier.events_processed == 5  # the dead letter is not an event processed
    row = part.tables["stats"].row("p1", table.features)
    assert row.values == {"n": 1, "mean_rating": 5.0}
    assert row.newest_event_ms == 1_796_000_000_000 + 13  # the newest change's commit time: freshness
    [(message, reason)] = dead.published
    assert message.offset() == 2 and "not JSON" in reason
