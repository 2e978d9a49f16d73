"""``livectx backtest run`` against the real broker, archive and registry: two versions of different quality
are ranked correctly, the same command gives identical figures (also split over worker processes), and
bad input is one readable error.

The history is a fraud-scenario topic unique to the test (payments and logins on one topic, decoded by
their schema header), half archived to a cold tier under ``tmp_path`` and half only on the broker, plus one
poison record; the versions live on a compacted registry topic unique to the test.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from livectx_backtest.cli import backtest
from livectx_backtest.example_fraud_model import save, train_fraud_model, training_rows
from livectx_ingest.archive.worker import ArchiveWorker

from livectx import serde
from livectx.errors import LivectxError
from livectx.kafka import producer
from livectx.models import registry
from livectx.settings import Settings
from tests.example import get_scenario

from .kafka_helpers import create_topic
from .test_fraud_agent_live_switch import models_topic

START = datetime(2026, 2, 3, 10, 0, tzinfo=UTC)
EVENTS = 6000


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, stack) -> Settings:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LIVECTX_TIER_URL", str(tmp_path / "tier"))  # this test's archive and artifacts only
    return Settings()


def produce_history(settings: Settings, topic: str, events: list, poison_at: datetime | None = None) -> None:  # type: ignore[type-arg]
    p = producer(settings)
    for _topic, event in events:
        key, value, headers = serde.encode(event)
        p.produce(topic, key=key, value=value, headers=headers)
    if poison_at is not None:  # claims to be a payment, is not JSON; its event time is its Kafka timestamp
        p.produce(topic, key=b"poison", value=b"{not json", headers=[("livectx-schema", b"transaction.v1")],
                  timestamp=int(poison_at.timestamp() * 1000))  # fmt: skip
    assert p.flush(30) == 0


def register_two_versions(settings: Settings, models: str, tmp_path: Path) -> None:
    """v1: one feature and shuffled labels (weak); v2: the fraud model proper (good)."""
    good = train_fraud_model(seed=1, events=20_000)
    save(good, tmp_path / "good.joblib")
    rows, labels = training_rows(1, 8000)
    from sklearn.ensemble import HistGradientBoostingClassifier

    weak_inputs = [[r[6], r[7]] for r in rows]  # login_failures_5m and the amount
    shuffled = np.random.default_rng(0).permutation(labels)
    weak = HistGradientBoostingClassifier(max_iter=50, random_state=0).fit(weak_inputs, shuffled)
    save(weak, tmp_path / "weak.joblib")
    registry.register(settings, "fraud", "v1", tmp_path / "weak.joblib", feature_columns=("login_failures_5m",),
                      feature_service="fraud_features", topic=models)  # fmt: skip
    registry.register(
        settings,
        "fraud",
        "v2",
        tmp_path / "good.joblib",
        config={"threshold": 0.5},
        feature_service="fraud_features",
        topic=models,
    )


def test_backtest_ranks_versions_and_repeats_exactly(isolated: Settings, unique: str, tmp_path: Path) -> None:
    models = models_topic(isolated, f"test.{unique}.models")
    topic = create_topic(isolated, f"test.{unique}.fraud", partitions=2)
    scenario = get_scenario("fraud")(3, START, 200.0, attack_every=500)
    events = [
        (t, e.model_copy(update={"user_id": f"{unique}-{e.user_id}"})) for t, e in itertools.islice(scenario, EVENTS)
    ]
    produce_history(isolated, topic, events[: EVENTS // 2])
    ArchiveWorker(isolated, topics=[topic], consumer_group=f"g-{unique}", compact_interval_s=0).run(
        until_caught_up=True
    )
    produce_history(isolated, topic, events[EVENTS // 2 :], poison_at=START + timedelta(seconds=5))
    register_two_versions(isolated, models, tmp_path)

    end = events[-1][1].event_time + timedelta(seconds=1)
    args = ["run", "--model", "fraud:v1", "--model", "fraud:v2", "--topic", topic, "--models-topic", models,
            "--from", START.isoformat(), "--to", end.isoformat(), "--json"]  # fmt: skip
    first = CliRunner().invoke(backtest, [*args, "--out", str(tmp_path / "a")], obj={})
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout)
    weak, good = summary["models"]
    assert (weak["ref"], good["ref"]) == ("fraud:v1", "fraud:v2")
    assert good["f1"] > 0.9 and good["roc_auc"] > 0.98, good
    assert good["f1"] > weak["f1"] + 0.3 and good["roc_auc"] > weak["roc_auc"] + 0.1, (good, weak)
    assert good["cost"] < weak["cost"]
    assert summary["decision"] == {"service": "fraud_features", "source": "transaction", "id": "txn_id",
                                   "entity": "user_id", "label": "is_fraud", "inputs": ["amount"]}  # fmt: skip
    assert summary["scored"] == sum(1 for t, _ in events if t.endswith("transactions"))
    assert summary["positives"] == sum(1 for _t, e in events if getattr(e, "is_fraud", False)) > 50
    assert summary["events"]["from_archive"] == EVENTS // 2 and summary["events"]["from_broker"] == EVENTS // 2 + 1
    assert sum(summary["events"]["bad"].values()) == 1 and "not JSON" in next(iter(summary["events"]["bad"]))
    diff = summary["differences"][0]
    assert diff["count"] > 0 and len(diff["examples"]) == min(10, diff["count"])
    assert diff["agreement"] == round(1 - diff["count"] / summary["scored"], 6)
    example = diff["examples"][0]
    assert {"id", "entity", "event_time", "label", "score_fraud:v1", "score_fraud:v2"} <= example.keys()
    payment = next(e for t, e in events if t.endswith("transactions") and e.txn_id == example["id"])
    assert (example["entity"], example["label"]) == (payment.user_id, payment.is_fraud)
    report = (tmp_path / "a" / "report.md").read_text()
    assert "| fraud:v2 |" in report and "precision_recall.png" in report
    for png in ("precision_recall.png", "score_distributions.png", "decisions_over_time.png"):
        assert (tmp_path / "a" / png).read_bytes()[:4] == b"\x89PNG"

    # The same command again, this time with the window state split over two processes: same figures.
    second = CliRunner().invoke(backtest, [*args, "--out", str(tmp_path / "b"), "--workers", "2"], obj={})
    assert second.exit_code == 0, second.output
    again = json.loads(second.stdout)
    assert again.pop("timing")["workers"] == 2
    summary.pop("timing")
    assert json.dumps(again, sort_keys=True) == json.dumps(summary, sort_keys=True)

    # Bad input: one readable error each.
    def error(*extra: str) -> str:
        result = CliRunner().invoke(backtest, ["run", "--topic", topic, "--models-topic", models, *extra], obj={})
        assert isinstance(result.exception, LivectxError), result.output
        return str(result.exception)

    assert "fraud:v9 is not registered" in error("--model", "fraud:v9")
    assert "no records" in error("--model", "fraud:v2", "--from", "2031-01-01", "--to", "2031-01-02")
    assert "not an ISO 8601 time" in error("--model", "fraud:v2", "--from", "yesterday")
    assert "at least one --model" in error()
