"""A decision declared on a feature service: compiled from its ``livectx.decision.*`` tags (by the helper or
by hand), checked against the scored source at load, with one error naming the service and the field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from livectx.errors import LivectxError
from livectx.models.rows import model_row
from livectx.repo.compile import RepoError
from livectx.repo.loader import load_repo
from livectx.repo.schema import SchemaDeclarationError
from tests.example import FRAUD_MODEL_FEATURES, LOGINS, REPO, TRANSACTIONS

FEATURE_STORE_YAML = "project: decide\nprovider: local\nregistry: registry.db\nonline_store:\n  type: sqlite\n"
SALES = """
from datetime import timedelta

from feast import Entity, FeatureService, ValueType
from feast.data_format import JsonFormat

from livectx.repo.declare import agg, count, decision_service, stream_source, stream_view, tumbling

shop = Entity(name="shop", join_keys=["shop_id"], value_type=ValueType.STRING)
sales = stream_source(
    name="sales", topic="decide.sales", timestamp_field="sold_at", key="shop_id",
    schema=JsonFormat("sale_id STRING, shop_id STRING, price DOUBLE, qty INT, note STRING DEFAULT NULL, "
                      "refunded BOOLEAN DEFAULT false, sold_at TIMESTAMP"),
)
shop_sales = stream_view(
    name="shop_sales", source=sales, entity=shop, window=tumbling(timedelta(minutes=30)),
    features=[count("sales_30m"), agg("revenue_30m", "sum", "price")],
)
{SERVICE}
"""
HELPER = 'refunds = decision_service("refunds", [shop_sales], scores=sales, id_field="sale_id", {ARGS})'
BY_HAND = 'refunds = FeatureService(name="refunds", features=[shop_sales], tags={TAGS})'


def _repo(tmp_path: Path, service: str) -> Path:
    (tmp_path / "feature_store.yaml").write_text(FEATURE_STORE_YAML)
    (tmp_path / "repo.py").write_text(textwrap.dedent(SALES.replace("{SERVICE}", service)))
    return tmp_path


def test_the_example_declares_the_fraud_decision() -> None:
    decision = REPO.decision("fraud_features")
    assert REPO.decision() == decision  # the repo's only decision
    assert (decision.source, decision.topic, decision.entity_key) == ("transaction", TRANSACTIONS, "user_id")
    assert (decision.id_field, decision.label, decision.inputs, decision.action) == (
        "txn_id",
        "is_fraud",
        ("amount",),
        "decline",
    )
    assert decision.columns == FRAUD_MODEL_FEATURES
    assert decision.topics == tuple(sorted((LOGINS, TRANSACTIONS)))  # the logins feed user_login_5m


def test_the_fraud_agent_builds_the_products_model_row() -> None:
    from livectx_agents.example_fraud import model_row as agent_row

    features = {"txn_count_5m": 3, "distinct_ips_10m": None, "login_failures_5m": 2.0, "not_a_column": 9}
    expected = [3.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 12.5]
    assert agent_row(features, 12.5) == model_row(features, (12.5,), FRAUD_MODEL_FEATURES) == expected


def test_a_helper_declared_decision_compiles(tmp_path: Path) -> None:
    repo = load_repo(_repo(tmp_path, HELPER.replace("{ARGS}", 'label="refunded", inputs=("price", "qty")')))
    decision = repo.decision()
    assert (decision.service, decision.source, decision.entity_key, decision.label) == (
        "refunds",
        "sales",
        "shop_id",
        "refunded",
    )
    assert decision.inputs == ("price", "qty") and decision.columns == ("sales_30m", "revenue_30m")
    assert (decision.topics, decision.action) == (("decide.sales",), "flag")
    event = repo.model("sales").model_validate_json(
        b'{"sale_id": "s1", "shop_id": "x", "price": 2.5, "qty": 3, "sold_at": "2026-03-10T12:00:00Z"}'
    )
    assert decision.input_values(event) == (2.5, 3)


def test_an_unlabelled_decision_and_a_service_without_one(tmp_path: Path) -> None:
    repo = load_repo(
        _repo(tmp_path, HELPER.replace("{ARGS}", "") + '\nplain = FeatureService(name="plain", features=[shop_sales])')
    )
    assert repo.decision("refunds").label is None and repo.decision("refunds").inputs == ()
    with pytest.raises(LivectxError, match="feature service plain declares no decision"):
        repo.decision("plain")
    with pytest.raises(LivectxError, match="unknown decision service 'nope'"):
        repo.decision("nope")


def test_a_repo_without_or_with_several_decisions_names_them() -> None:
    from dataclasses import replace

    with pytest.raises(LivectxError, match="declares none"):
        replace(REPO, decisions={}).decision()
    two = replace(REPO, decisions={"a": REPO.decision(), "b": REPO.decision()})
    with pytest.raises(LivectxError, match=r"declares several \(decision services: a, b\)"):
        two.decision()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ('label="colour"', "feature service refunds: decision field 'colour' is not a field of source sales"),
        ('label="price"', "decision label 'price' is a float field of source sales, not a boolean"),
        ('inputs=("note",)', "decision input 'note' is a string field of source sales, not a number"),
        ('inputs=("price", "price")', "repeat a field"),
    ],
)
def test_the_helper_refuses_fields_that_do_not_fit_at_declaration(tmp_path: Path, args: str, message: str) -> None:
    with pytest.raises(RepoError, match=message):
        load_repo(_repo(tmp_path, HELPER.replace("{ARGS}", args)))


def test_the_helper_raises_at_once_outside_a_repo() -> None:
    from feast.data_format import JsonFormat

    from livectx.repo.declare import decision_service, stream_source

    source = stream_source(name="s", topic="t", schema=JsonFormat("ts TIMESTAMP, k STRING, x STRING"),
                           timestamp_field="ts", key="k")  # fmt: skip
    with pytest.raises(SchemaDeclarationError, match="decision input 'x' is a string field"):
        decision_service("d", [], scores=source, id_field="k", inputs=("x",))


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        ('{"livectx.decision.source": "nope", "livectx.decision.id": "sale_id"}',
         "feature service refunds: decision source 'nope' is not a source of the repo"),
        ('{"livectx.decision.source": "sales"}', "a decision names its scored source and id"),
        ('{"livectx.decision.source": "sales", "livectx.decision.id": "sale_id", "livectx.decision.inputs": "qty,x"}',
         "decision field 'x' is not a field of source sales"),
        ('{"livectx.decision.source": "sales", "livectx.decision.id": "sale_id", "livectx.decision.lable": "x"}',
         "unknown decision tag livectx.decision.lable"),
        ('{"livectx.decision.source": "sales", "livectx.decision.id": "sale_id", "livectx.model_columns": "zz"}',
         "model columns zz are not features it serves"),
    ],
)  # fmt: skip
def test_hand_written_tags_are_checked_at_load(tmp_path: Path, tags: str, message: str) -> None:
    with pytest.raises(RepoError, match=message):
        load_repo(_repo(tmp_path, BY_HAND.replace("{TAGS}", tags)))


def test_hand_written_tags_compile_like_the_helpers(tmp_path: Path) -> None:
    tags = (
        '{"livectx.decision.source": "sales", "livectx.decision.id": "sale_id", "livectx.decision.label": "refunded"}'
    )
    decision = load_repo(_repo(tmp_path, BY_HAND.replace("{TAGS}", tags))).decision("refunds")
    assert (decision.label, decision.inputs, decision.action) == ("refunded", (), "flag")
