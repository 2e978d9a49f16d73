"""The article's story as a test: with the same model, fresh features catch the card-testing bursts that a
15-minute batch snapshot misses. Seeded and unpaced (no clock in the decisions), so deterministic; no
timing thresholds: latency figures belong to ``livectx bench attack``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from livectx_benchmarks.attack import AttackSpec, Outcome, figures, run_scenario, train_model

START = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
SPEC = AttackSpec(
    seed=5, payments_per_s=120.0, seconds=40.0, history_s=70.0, attacks=(5.0, 18.0, 28.0), users=2_000, paced=False
)


@pytest.fixture(scope="module")
def run() -> tuple[object, Outcome]:
    model = train_model(SPEC, seconds=160.0, every_s=6.0)
    return model, run_scenario(SPEC, model, START)


@pytest.fixture(scope="module")
def outcome(run: tuple[object, Outcome]) -> dict[str, float]:
    return figures(run[1])


def test_every_burst_lands_inside_the_run_with_ground_truth(outcome: dict[str, float]) -> None:
    assert outcome["bursts"] == 3 and outcome["attack_payments"] >= 60


def test_fresh_features_catch_what_the_stale_snapshot_misses(outcome: dict[str, float]) -> None:
    assert outcome["attack_decline_rate_fresh"] > outcome["attack_decline_rate_stale"]
    assert outcome["attack_decline_rate_fresh_after_3"] >= 0.9 > 0.2 >= outcome["attack_decline_rate_stale_after_3"]
    assert outcome["bursts_detected_fresh"] == 3
    assert outcome["false_positive_rate"] <= 0.01


def test_the_same_seed_gives_the_same_decisions(run: tuple[object, Outcome]) -> None:
    model, first = run
    again = run_scenario(SPEC, model, START)
    assert (first.fresh, first.stale, first.burst) == (again.fresh, again.stale, again.burst)


def test_the_snapshot_must_be_inside_the_history() -> None:
    with pytest.raises(ValueError, match="inside the history"):
        AttackSpec(history_s=30.0, refreshed_before_s=60.0)
