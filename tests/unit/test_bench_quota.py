"""``livectx bench quota``'s figures from its windows, and the bench command's own options (no services)."""

from __future__ import annotations

import math

import click
import pytest
from livectx_benchmarks.cli import bench_options
from livectx_benchmarks.quota import run
from livectx_benchmarks.quota_figures import PHASES, QUIET_AGAIN, Phase, assign_decisions, figures, target_met
from livectx_benchmarks.quota_setup import research_tenant


def _phases() -> dict[str, Phase]:
    phases = {name: Phase(name, started=100.0 * i, seconds=10.0) for i, name in enumerate(PHASES)}
    assign_decisions(
        phases,
        [(5.0, 1.0, 10.0, ""), (9.99, 2.0, 20.0, "timeout"), (50.0, 99.0, 99.0, ""),  # quiet; 50: between
         (105.0, 3.0, 30.0, ""), (205.0, 1.2, 12.0, ""), (310.0, 99.0, 99.0, "")],  # 310: after all
    )  # fmt: skip
    phases["quiet"].freshness_ms = [10.0] * 99 + [100.0]
    phases["unthrottled"].freshness_ms = [10.0] * 98 + [400.0, 400.0]
    phases["quota"].freshness_ms = [10.0] * 98 + [120.0, 120.0]
    phases["unthrottled"].replay_bytes, phases["unthrottled"].replay_records = 50_000_000.0, 200_000.0
    phases["quota"].replay_bytes, phases["quota"].replay_records = 9_000_000.0, 40_000.0
    phases["quota"].live_events = 10_000.0
    return phases


def test_decisions_fall_into_the_window_they_ended_in() -> None:
    phases = _phases()
    assert phases["quiet"].decide_ms == [1.0, 2.0] and phases["quiet"].degraded == {"timeout": 1}
    assert phases["unthrottled"].decide_ms == [3.0] and phases["quota"].decide_ms == [1.2]


def test_figures_are_per_window_with_ratios_to_quiet() -> None:
    out = figures(_phases(), quota_bytes=1_000_000)
    assert out["decision_p99_ms_quiet"] == 2.0 and out["decision_p99_ms_quota"] == 1.2
    assert out["decision_p99_ratio_quota"] == pytest.approx(0.6)
    assert out["decision_p99_ratio_unthrottled"] == pytest.approx(1.5)
    assert out["freshness_p99_ms_quiet"] == 100.0 and out["freshness_p99_ms_unthrottled"] == 400.0
    assert out["freshness_p99_ratio_quota"] == pytest.approx(1.2)
    assert out["decision_e2e_p99_ratio_unthrottled"] == pytest.approx(1.5)
    assert out["degraded_share_quiet"] == 0.5
    assert out["replay_bytes_per_s_unthrottled"] == 5_000_000.0 and out["replay_events_per_s_quota"] == 4_000.0
    assert out["replay_share_of_quota"] == pytest.approx(0.9)
    assert out["live_events_per_s_quota"] == 1_000.0 and out["replay_bytes_per_s_quiet"] == 0.0
    assert out["target_met"] == 1.0
    for name in ("decision_p99_ms_", "freshness_p99_ms_"):
        assert all(f"{name}{phase}" in out for phase in PHASES)
    assert not any(name.endswith(QUIET_AGAIN) for name in out)  # only when the run had that window


def test_the_closing_quiet_window_is_reported_but_not_the_baseline() -> None:
    phases = _phases()
    phases[QUIET_AGAIN] = Phase(QUIET_AGAIN, started=400.0, seconds=10.0, decide_ms=[9.0], freshness_ms=[900.0])
    out = figures(phases, quota_bytes=1_000_000)
    assert out[f"decision_p99_ms_{QUIET_AGAIN}"] == 9.0 and out[f"freshness_p99_ms_{QUIET_AGAIN}"] == 900.0
    assert out["decision_p99_ratio_quota"] == pytest.approx(0.6)


def test_the_target_needs_both_ratios_within_one_and_a_half() -> None:
    assert target_met({"decision_p99_ratio_quota": 1.5, "freshness_p99_ratio_quota": 1.49})
    assert not target_met({"decision_p99_ratio_quota": 1.51, "freshness_p99_ratio_quota": 1.0})
    assert not target_met({"decision_p99_ratio_quota": 1.0, "freshness_p99_ratio_quota": math.nan})


def test_a_window_without_samples_gives_no_number_and_misses_the_target() -> None:
    phases = {name: Phase(name, started=0.0, seconds=1.0) for name in PHASES}
    out = figures(phases, quota_bytes=1)
    assert math.isnan(out["decision_p99_ms_quiet"]) and math.isnan(out["decision_p99_ratio_quota"])
    assert out["target_met"] == 0.0


def test_the_research_tenant_declares_its_consumer_quota() -> None:
    spec = research_tenant(2_097_152)
    assert spec.quota.as_configs() == {"consumer_byte_rate": 2_097_152.0}
    assert spec.principals == ("research-replay",) and spec.group_prefix == "research."


def test_bench_options_are_the_run_functions_keywords() -> None:
    assert bench_options("quota", run, ("seconds=30", "quota-bytes=1e6")) == {"seconds": 30.0, "quota_bytes": 1e6}
    with pytest.raises(click.UsageError, match=r"no option 'nope=1'.*seconds, rate"):
        bench_options("quota", run, ("nope=1",))
    with pytest.raises(click.UsageError, match="not a number"):
        bench_options("quota", run, ("rate=fast",))
    with pytest.raises(click.UsageError, match="NAME=NUMBER"):
        bench_options("quota", run, ("seconds",))


def test_an_option_out_of_range_is_one_line_before_anything_starts() -> None:
    from livectx.errors import LivectxError
    from livectx.settings import Settings

    with pytest.raises(LivectxError, match="-o rate=0 must be at least 1"):
        run(Settings(), rate=0)
