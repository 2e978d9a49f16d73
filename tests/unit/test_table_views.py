"""Feature views over a captured table's current rows, without services: the declaration, the retracting
aggregate's exactness and checkpoint round trip, and how changes are re-keyed by a non-key column."""

from __future__ import annotations

import random
from datetime import timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from feast import Entity, ValueType
from feast.data_format import JsonFormat

from livectx.cdc.changelog import ChangelogAggregate, routes
from livectx.features.spec import Feature
from livectx.repo.cdc import cdc_source, table_view
from livectx.repo.compile import RepoError, compile_source, compile_table_view
from livectx.repo.declare import agg, count
from livectx.repo.loader import load_repo
from livectx.repo.schema import SchemaDeclarationError

REPO = Path(__file__).resolve().parents[2] / "feature_repo"
FEATURES = (Feature("n", "count"), Feature("total", "sum", "price"), Feature("avg", "mean", "price"))


def _source() -> Any:
    schema = JsonFormat("id STRING, item STRING DEFAULT NULL, price DOUBLE DEFAULT NULL")
    return cdc_source(name="rows", table="rows", topic="x.rows", schema=schema, key="id")


ITEM = Entity(name="item", join_keys=["item"], value_type=ValueType.STRING)


def test_the_example_declares_review_stats_per_product_over_the_reviews_table() -> None:
    [stats] = load_repo(REPO).tables
    assert (stats.name, stats.entity_key, stats.row_key, stats.rekeyed) == (
        "app_review_stats", "product_id", "review_id", True,
    )  # fmt: skip
    assert [(f.name, f.aggregation, f.column) for f in stats.features] == [
        ("review_count", "count", None), ("mean_rating", "mean", "rating"),
    ]  # fmt: skip
    assert "app_review_stats" not in {g.name for g in load_repo(REPO).groups}  # not a windowed view


def test_a_table_view_keeps_only_what_a_retraction_can_undo() -> None:
    with pytest.raises(SchemaDeclarationError, match="cannot undo a max"):
        table_view(name="v", source=_source(), entity=ITEM, features=[agg("top", "max", "price")])
    with pytest.raises(SchemaDeclarationError, match="not a column"):
        table_view(name="v", source=_source(), entity=ITEM, features=[agg("s", "sum", "nope")])
    view = table_view(name="v", source=_source(), entity=ITEM, features=[count("n"), agg("s", "sum", "price")])
    group = compile_table_view(view, compile_source(_source(), "id"))
    assert (group.entity_key, group.row_key, group.columns, group.ttl > timedelta(days=365)) == (
        "item", "id", ("price",), True,
    )  # fmt: skip
    view.aggregations[1].function = "last"  # as a hand-written StreamFeatureView could say
    with pytest.raises(RepoError, match="cannot undo a last"):
        compile_table_view(view, compile_source(_source(), "id"))


def _change(op: str, lsn: int, **row: Any) -> dict[str, Any]:
    return {**row, "cdc_op": op, "cdc_lsn": lsn, "cdc_ts": 1_000 + lsn}


def test_float_sums_stay_exact_through_retractions_and_a_checkpoint_round_trip() -> None:
    aggregate = ChangelogAggregate("item", ("price",))
    rng = random.Random(3)
    table: dict[str, float] = {}
    for lsn in range(1, 3000):
        key = f"r{rng.randrange(40)}"
        if key in table and rng.random() < 0.4:
            aggregate.apply(key, _change("d", lsn, id=key, item="a", price=table.pop(key)))
        else:
            table[key] = rng.choice((0.1, 0.2, 0.3, 1e-9, 12345.678))
            aggregate.apply(key, _change("u", lsn, id=key, item="a", price=table[key]))
    want_sum = sum(Fraction(v) for v in table.values())
    row = aggregate.row("a", FEATURES)
    assert row.values == {"n": len(table), "total": float(want_sum), "avg": float(want_sum / len(table))}
    assert row.newest_event_ms == 1_000 + 2999
    restored = ChangelogAggregate("item", ("price",))
    for key in aggregate.rows:
        restored.load(key, aggregate.dump(key))
    assert restored.totals == aggregate.totals and restored.rows == aggregate.rows
    assert restored.row("a", FEATURES).values == row.values


def test_an_entity_without_live_rows_counts_zero_and_has_no_mean() -> None:
    aggregate = ChangelogAggregate("item", ("price",))
    aggregate.apply("r1", _change("c", 1, id="r1", item="a", price=2.0))
    assert aggregate.dirty == {"r1"}
    aggregate.clean()
    assert aggregate.apply("r1", _change("d", 2, id="r1", item="a", price=2.0)) == {"a"}
    assert aggregate.row("a", FEATURES).values == {"n": 0, "total": None, "avg": None}
    assert aggregate.apply("r1", _change("c", 1, id="r1", item="a", price=2.0)) == set()  # a re-send stays deleted
    assert aggregate.dirty == {"r1"}


def _envelope(op: str, before: dict | None, after: dict | None, lsn: int = 7) -> dict[str, Any]:
    return {"op": op, "before": before, "after": after, "source": {"ts_ms": 5, "lsn": lsn}}


def test_a_change_goes_to_its_entity_and_a_moved_row_retracts_from_the_old_one() -> None:
    a, b = {"id": "r", "item": "a", "price": 1.0}, {"id": "r", "item": "b", "price": 1.0}
    assert routes(_envelope("c", None, a), "item") == [("a", None)]
    assert routes(_envelope("u", a, {**a, "price": 2.0}), "item") == [("a", None)]
    moved = routes(_envelope("u", a, b), "item")
    assert moved == [("b", None), ("a", {**_envelope("u", a, b), "op": "d", "after": None})]
    assert routes(_envelope("d", a, None), "item") == [("a", None)]
    assert routes(_envelope("u", a, {**a, "item": None}), "item")[0][0] == "a"  # moved to no entity
    with pytest.raises(ValueError, match="REPLICA IDENTITY FULL"):
        routes(_envelope("u", None, b), "item")
    with pytest.raises(ValueError, match="REPLICA IDENTITY FULL"):
        routes(_envelope("d", {"id": "r"}, None), "item")


def test_re_keyed_changes_with_re_sends_give_each_partition_whole_entities_equal_to_the_table() -> None:
    """The engine's two stages in miniature: changes routed by entity to 3 partitions (each with its own
    aggregate, as the engine keeps them), delivered with Connect-style re-sends: the union of the
    partitions' rows equals count/sum/mean recomputed from the final table."""
    import json

    from livectx.cdc.envelope import flatten

    rng = random.Random(11)
    table: dict[str, dict[str, Any]] = {}
    log: list[dict[str, Any]] = []
    for lsn in range(1, 2500):
        key = f"r{rng.randrange(80)}"
        if key in table and rng.random() < 0.25:
            log.append(_envelope("d", table.pop(key), None, lsn))
        else:
            row = {"id": key, "item": f"i{rng.randrange(12)}", "price": rng.choice((0.5, 1.25, 3.0))}
            log.append(_envelope("u" if key in table else "c", table.get(key), row, lsn))
            table[key] = row
    delivered, position = [], 0
    while position < len(log):
        step = rng.randint(20, 200)
        delivered += log[max(0, position - rng.randint(0, 50)) : position + step]
        position += step
    partitions = [ChangelogAggregate("item", ("price",)) for _ in range(3)]
    owner: dict[str, int] = {}
    for change in delivered:
        for entity, synthesized in routes(change, "item"):
            p = owner.setdefault(entity, len(owner) % 3)
            row = flatten(json.dumps(synthesized or change).encode())
            partitions[p].apply(row["id"], row)
    expected: dict[str, list[float]] = {}
    for row in table.values():
        expected.setdefault(row["item"], []).append(row["price"])
    for entity, p in owner.items():
        prices = expected.get(entity, [])
        want = {"n": len(prices), "total": sum(prices) if prices else None}
        want["avg"] = sum(prices) / len(prices) if prices else None
        assert partitions[p].row(entity, FEATURES).values == want, entity
        assert all(entity not in other.totals for i, other in enumerate(partitions) if i != p)
