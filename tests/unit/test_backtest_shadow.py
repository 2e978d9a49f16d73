"""The shadow's join without services: scored events meet live decisions on the decision's id, only
decisions made on records of the scored topic count, and an unlabelled decision is compared, not judged."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
from livectx_backtest.scoring import Candidate
from livectx_backtest.shadow import Shadow

from livectx.events import Decision
from tests.example import REPO, Transaction

from .test_model_registry import constant_model, record

AT = datetime(2026, 5, 2, 9, 0, tzinfo=UTC)
DECISION = REPO.decision("fraud_features")


class Reader:
    """An online store that holds nothing: every feature reads as missing."""

    def read(self, entities: list[str], service: str) -> dict[str, list[Any]]:
        return {name: [None] * len(entities) for name in DECISION.columns}


def payment(n: int, fraud: bool) -> Transaction:
    return Transaction(
        event_time=AT, txn_id=f"t{n}", user_id=f"u{n}", card_id="c", merchant_id="m", amount=5.0, currency="EUR",
        ip="10.0.0.1", country="DE", is_fraud=fraud,
    )  # fmt: skip


def live(n: int, action: str, topic: str = "payments") -> Decision:
    return Decision(event_time=AT, decision_id=f"{topic}-0-{n}", agent="a", entity_id=f"t{n}", action=action,
                    score=0.1, source=f"{topic}-0-{n}", model="fraud:v1")  # fmt: skip


def _shadow(tmp_path: Path, labelled: bool) -> Shadow:
    model = joblib.load(constant_model(tmp_path / "m.joblib", 0.9))  # flags everything at 0.5
    spec = DECISION if labelled else dataclasses.replace(DECISION, label=None)
    return Shadow(Candidate(record("v2"), model, 0.5), spec, Reader(), "payments")


def test_events_meet_live_decisions_on_the_id_of_the_scored_topic_only(tmp_path: Path) -> None:
    shadow = _shadow(tmp_path, labelled=True)
    shadow.decision(live(0, "decline"))
    shadow.decision(live(1, "approve"))
    shadow.decision(live(2, "decline", topic="tickets"))  # another stream's decision: not compared
    shadow.events([payment(0, True), payment(1, False), payment(2, False)])
    r = shadow.report.to_json()
    assert (r["scored"], r["live_decisions"], r["compared"], r["agree"]) == (3, 2, 2, 1)
    assert r["live"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "flagged": 1.0}
    assert r["candidate_metrics"]["precision"] == 0.5 and r["candidate_metrics"]["flagged"] == 2.0
    (example,) = r["examples"]
    assert (example["id"], example["entity"], example["label"]) == ("t1", "u1", False)


def test_an_unlabelled_decision_is_compared_not_judged(tmp_path: Path) -> None:
    shadow = _shadow(tmp_path, labelled=False)
    shadow.events([payment(0, True), payment(1, False)])
    shadow.decision(live(0, "decline"))
    shadow.decision(live(1, "approve"))
    r = shadow.report.to_json()
    assert (r["labelled"], r["compared"], r["agreement"]) == (False, 2, 0.5)
    assert r["live"] == {"flagged": 1.0} and r["delta"] == {"flagged": 1.0}
    assert "label" not in r["examples"][0]
