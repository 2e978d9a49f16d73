"""The card-testing story on the live path, short: payments through Kafka into the feature worker, the
fraud agent (its own process, the model from the registry) deciding each from Redis, beside the 15-minute
batch snapshot in shadow.

Seeded traffic (2,000 users, 200 payments/s, one burst of card testing); what is asserted is the ordering
the story is about and that nothing was lost: every payment of the run has its live decision, fresh
features decline attack payments the stale snapshot approves, normal traffic is barely touched. No timing
assertion: latency is the bench's business (``livectx bench attack``).
"""

from __future__ import annotations

from livectx_benchmarks.attack import AttackSpec, figures, train_model
from livectx_benchmarks.attack_live import run_live

from livectx.settings import Settings


def test_fresh_features_on_the_live_path_decline_what_the_stale_snapshot_approves(  # type: ignore[no-untyped-def]
    settings: Settings, feature_store
) -> None:
    spec = AttackSpec(payments_per_s=200.0, seconds=14.0, history_s=65.0, attacks=(2.0,), users=2_000)
    out = run_live(settings, spec, train_model(spec, seconds=90.0))
    f = figures(out)
    assert f["bursts"] == 1 and f["attack_payments"] >= 20
    assert f["decisions_missing"] == 0 and len(out.fresh) == len(out.stale) == f["payments"] > 2_000
    assert f["attack_decline_rate_fresh_after_3"] > f["attack_decline_rate_stale_after_3"]
    assert f["attack_decline_rate_fresh_after_3"] >= 0.5 and f["bursts_detected_stale"] == 0
    assert f["false_positive_rate"] <= 0.01
    assert len(out.latency_ms) == f["payments"]  # every decision timed by the agent
