"""A backtest's summary and report from scored events, without services: judged when the decision declares
a label; scores, flagged counts and agreement only (said so in the report) when it declares none."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from livectx_backtest.asof import ReplayCounts
from livectx_backtest.report import markdown, write_report
from livectx_backtest.run import BacktestResult, BacktestSpec, summarise
from livectx_backtest.scoring import Candidate

from livectx.tier.replay import ReplayStats
from tests.example import REPO

from .test_model_registry import record

DECISION = REPO.decision("fraud_features")
N = 200


def _result(labelled: bool) -> BacktestResult:
    decision = DECISION if labelled else dataclasses.replace(DECISION, label=None)
    rng = np.random.default_rng(0)
    scored = {
        "position": np.arange(N, dtype=np.int64),
        "event_ms": 1_767_225_600_000 + 1000 * np.arange(N, dtype=np.int64),
        "id": np.asarray([f"e{i}" for i in range(N)], dtype=object),
        "entity": np.asarray([f"u{i % 7}" for i in range(N)], dtype=object),
    }
    if labelled:
        scored["label"] = np.arange(N) % 10 == 0
    scores = {"fraud:v1": rng.random(N), "fraud:v2": rng.random(N)}
    candidates = [Candidate(record(v), None, 0.5) for v in ("v1", "v2")]
    counts = ReplayCounts(records=N)
    spec = BacktestSpec(("fraud:v1", "fraud:v2"), topics=decision.topics)
    summary = summarise(spec, decision, candidates, DECISION.columns, scored, scores, counts, ReplayStats())
    timing = {"seconds": 1.0, "events_per_s": float(N)}
    return BacktestResult(summary, timing, candidates, decision, scored, scores)


def test_a_labelled_decision_is_judged() -> None:
    result = _result(labelled=True)
    s = result.summary
    assert (s["scored"], s["positives"], s["costs"]) == (N, N // 10, {"false_positive": 1.0, "false_negative": 20.0})
    v1 = s["models"][0]
    assert v1["tp"] + v1["fp"] == v1["flagged"] == int((result.scores["fraud:v1"] >= 0.5).sum())
    assert {"precision", "recall", "roc_auc", "cost", "score_p50"} <= v1.keys()
    assert "label" in s["differences"][0]["examples"][0] and s["timeline"]["positives"] is not None
    assert "| model | threshold | precision |" in markdown(result) and "of them positive (is_fraud)" in markdown(result)


def test_an_unlabelled_decision_reports_scores_and_agreement_only(tmp_path: Path) -> None:
    result = _result(labelled=False)
    s = result.summary
    assert (s["positives"], s["costs"], s["decision"]["label"]) == (None, None, None)
    v1 = s["models"][0]
    assert not {"precision", "recall", "cost", "tp"} & v1.keys()
    assert v1["flagged"] == int((result.scores["fraud:v1"] >= 0.5).sum()) and 0 < v1["score_p50"] < 1
    d = s["differences"][0]
    assert d["agreement"] == round(1 - d["count"] / N, 6) and "label" not in d["examples"][0]
    assert s["timeline"]["positives"] is None and sum(s["timeline"]["scored"]) == N
    paths = write_report(result, tmp_path)
    report = paths["markdown"].read_text()
    assert "declares no label: scores and agreement only" in report and "precision |" not in report
    assert all(paths[p].read_bytes()[:4] == b"\x89PNG" for p in ("pr", "scores", "timeline"))
