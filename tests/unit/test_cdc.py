"""Change data capture without services: Debezium envelopes, the cdc_source declaration, the connector config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from livectx import serde
from livectx.cdc.connector import connector_config, shown
from livectx.cdc.envelope import flatten
from livectx.errors import SchemaError
from livectx.repo.loader import load_repo
from livectx.repo.schema import SchemaDeclarationError
from livectx.settings import Settings
from livectx.vectors.sources import Delete, Upsert, to_change

REPO = Path(__file__).resolve().parents[2] / "feature_repo"
COMMIT_MS = 1_796_136_819_701


def _event(op: str, before: dict | None, after: dict | None) -> bytes:
    source = {"ts_ms": COMMIT_MS, "lsn": 33352352, "table": "reviews", "snapshot": "false"}
    return json.dumps({"before": before, "after": after, "source": source, "op": op, "ts_ms": COMMIT_MS + 40}).encode()


ROW = {"review_id": "r1", "product_id": "p1", "rating": 5, "body": "boils fast"}
NEW = {**ROW, "rating": 1, "body": "broke after a week"}


@pytest.fixture(scope="module")
def repo():  # type: ignore[no-untyped-def]
    return load_repo(REPO)


def test_each_operation_flattens_to_its_row_image_with_the_commit_time() -> None:
    assert flatten(_event("c", None, ROW)) == {**ROW, "cdc_op": "c", "cdc_ts": COMMIT_MS, "cdc_lsn": 33352352}
    assert flatten(_event("r", None, ROW))["cdc_op"] == "r"
    assert flatten(_event("u", ROW, NEW))["body"] == "broke after a week"
    assert flatten(_event("d", ROW, None))["body"] == "boils fast"  # the old row, to retract it


def test_an_envelope_with_schemas_is_unwrapped() -> None:
    value = json.dumps({"schema": {"type": "struct"}, "payload": json.loads(_event("c", None, ROW))}).encode()
    assert flatten(value)["review_id"] == "r1"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"{not json", "not JSON"),
        (b'{"after": {}}', "no 'op' field"),
        (_event("t", None, None), "'t' is not one of"),
        (_event("u", ROW, None), "without its 'after' row image"),
        (json.dumps({"op": "c", "after": ROW, "source": {}}).encode(), "commit timestamp"),
    ],
)
def test_bad_envelopes_name_the_dead_letter_reason(value: bytes, reason: str) -> None:
    with pytest.raises(SchemaError, match=reason):
        flatten(value)


def test_the_declared_model_reads_envelopes_with_the_commit_time_as_event_time(repo) -> None:  # type: ignore[no-untyped-def]
    event = serde.decode(repo.sources["app_review"].model, _event("u", ROW, NEW))
    assert event.key == "r1"
    assert event.event_time_ms == COMMIT_MS
    assert (event.body, event.cdc_op) == ("broke after a week", "u")


def test_upserts_deletes_and_tombstones_of_a_captured_table(repo) -> None:  # type: ignore[no-untyped-def]
    memory = repo.memory["app_reviews_memory"]
    upsert = to_change(memory, b"r1", _event("u", ROW, NEW), max_chars=1000)
    assert isinstance(upsert, Upsert)
    assert (upsert.id, upsert.text, upsert.category, upsert.event_ms) == (
        "app_review:r1",
        "broke after a week",
        "p1",
        COMMIT_MS,
    )
    assert to_change(memory, b"r1", _event("d", ROW, None), max_chars=1000) == Delete("app_review:r1")
    assert to_change(memory, b"r1", None, max_chars=1000) == Delete("app_review:r1")


def test_the_source_carries_the_table_for_the_connector(repo) -> None:  # type: ignore[no-untyped-def]
    table = repo.sources["app_review"].cdc
    assert (table.database, table.qualified, table.key, table.topic) == (
        "livectx_app",
        "public.reviews",
        "review_id",
        "livectx.app.reviews",
    )
    assert table.columns == ("review_id", "product_id", "rating", "body")
    assert repo.sources["transaction"].cdc is None


def test_the_connector_config_routes_keys_topic_and_latency(repo, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LIVECTX_CDC_DATABASE_PASSWORD", "s3cret")
    monkeypatch.setenv("LIVECTX_CDC_POLL_INTERVAL_MS", "5")
    config = connector_config(repo.sources["app_review"].cdc, Settings())
    assert config["transforms.route.replacement"] == "livectx.app.reviews"
    assert config["transforms.key.field"] == "review_id"
    assert config["key.converter"].endswith("StringConverter")
    assert config["slot.name"] == config["publication.name"] == "livectx_app_review"
    assert config["column.include.list"].split(",")[0] == "public.reviews.review_id"
    assert (config["poll.interval.ms"], config["producer.override.linger.ms"]) == ("5", "0")
    assert config["transforms.key.predicate"] == "table"  # heartbeat records keep their own keys and topic
    assert config["predicates.table.pattern"] == r"livectx\.app\.reviews"
    assert "pg_logical_emit_message" in config["heartbeat.action.query"]
    assert config["database.password"] == "s3cret"
    assert shown(config)["database.password"] == "****"


def test_a_bad_cdc_declaration_fails_at_once() -> None:
    from feast.data_format import JsonFormat

    from livectx.repo.cdc import cdc_source

    with pytest.raises(SchemaDeclarationError, match="reserved for the envelope"):
        cdc_source(name="s", table="t", topic="x.t", schema=JsonFormat("id STRING, cdc_op STRING"), key="id")
    with pytest.raises(SchemaDeclarationError, match="not a plain lower-case SQL identifier"):
        cdc_source(name="s", table="T; drop", topic="x.t", schema=JsonFormat("id STRING"), key="id")
    with pytest.raises(SchemaDeclarationError, match="key 'nope'"):
        cdc_source(name="s", table="t", topic="x.t", schema=JsonFormat("id STRING"), key="nope")


def test_retained_wal_that_keeps_growing_warns(repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from livectx.cdc.manage import _wal_warning

    monkeypatch.setenv("LIVECTX_STACK_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("LIVECTX_CDC_WAL_WARN_BYTES", "1000")
    settings, table = Settings(), repo.sources["app_review"].cdc
    assert _wal_warning(settings, table, 5_000) == ""  # a first look has nothing to compare with
    assert "retains 9000 bytes of WAL and growing (was 5000)" in _wal_warning(settings, table, 9_000)
    assert _wal_warning(settings, table, 9_000) == ""  # confirmed again: not growing
    assert _wal_warning(settings, table, 900) == ""  # under the threshold
    assert _wal_warning(settings, table, 950) == ""


def test_a_changelog_aggregate_equals_the_recomputation_despite_re_sends() -> None:
    """Random inserts, updates (also moving rows between entities) and deletes, delivered with Connect-style
    re-sends of a suffix after each 'restart': the aggregate equals count/mean recomputed from the table."""
    import random

    from livectx.cdc.changelog import ChangelogAggregate

    rng = random.Random(7)
    table: dict[str, dict] = {}
    log: list[tuple[str, dict | None]] = []
    for lsn in range(1, 2000):
        key = f"r{rng.randrange(60)}"
        if key in table and rng.random() < 0.3:
            log += [(key, {**table.pop(key), "cdc_op": "d", "cdc_lsn": lsn}), (key, None)]
        else:
            op = "u" if key in table else "c"
            table[key] = {"item": f"p{rng.randrange(8)}", "rating": rng.randint(1, 5)}
            log.append((key, {**table[key], "cdc_op": op, "cdc_lsn": lsn}))
    delivered, position = [], 0
    while position < len(log):  # a 'restart' re-sends up to 50 changes already delivered
        step = rng.randint(20, 200)
        delivered += log[max(0, position - rng.randint(0, 50)) : position + step]
        position += step
    aggregate = ChangelogAggregate("item", ("rating",))
    for key, row in delivered:
        aggregate.apply(key, row)
    expected: dict[str, list[int]] = {}
    for row in table.values():
        expected.setdefault(row["item"], []).append(row["rating"])
    assert len(delivered) > len(log)  # there were re-sends
    assert set(aggregate.totals) == set(expected)
    for item, ratings in expected.items():
        assert aggregate.values(item) == pytest.approx(
            {"count": len(ratings), "mean_rating": sum(ratings) / len(ratings)}
        )


def test_a_windowed_view_over_a_changelog_is_refused() -> None:
    from datetime import timedelta

    from feast import Entity, ValueType
    from feast.data_format import JsonFormat

    from livectx.repo.cdc import cdc_source
    from livectx.repo.compile import RepoError, compile_source, compile_view
    from livectx.repo.declare import count, stream_view, tumbling

    source = cdc_source(
        name="rows", table="rows", topic="x.rows", schema=JsonFormat("id STRING, item STRING"), key="id"
    )
    item = Entity(name="item", join_keys=["item"], value_type=ValueType.STRING)
    view = stream_view(
        name="rows_per_item", source=source, entity=item, window=tumbling(timedelta(hours=1)),
        features=[count("rows")],
    )  # fmt: skip
    with pytest.raises(RepoError, match="is a table's changelog"):
        compile_view(view, compile_source(source, "item"))
