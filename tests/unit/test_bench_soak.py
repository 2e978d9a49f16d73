"""``livectx bench soak``'s figures from its per-minute samples, its tables and its command line (no services)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from livectx_benchmarks import soak_procs
from livectx_benchmarks.cli import bench_options
from livectx_benchmarks.result import BenchResult, BenchTable
from livectx_benchmarks.soak import run
from livectx_benchmarks.soak_figures import (
    Sample,
    figures,
    keeps_up,
    progress_line,
    rate_per_s,
    rss_growth,
    slope_per_minute,
    tables,
    warm_sample,
    worst_process,
)

from livectx.cli import cli
from livectx.errors import LivectxError
from livectx.settings import Settings

RATES = {"features": 5000.0, "memory": 50.0, "agent": 100.0}


def _samples(p99s: tuple[float, ...] = (40.0, 60.0, 80.0, 70.0), features_lag: tuple[int, ...] = (300, 200, 250, 400)):
    """A baseline and four soak minutes: the workers' RSS flat after a warm-up jump, the agent's growing."""
    out = [
        Sample(0, at=60.0, seconds=60.0, freshness_p50_ms=10.0, freshness_p99_ms=20.0, freshness_rows=1000,
               lag={"features": 100, "memory": 0, "agent": 0}, committed={"features": 0, "memory": 0, "agent": 0},
               sent={"features": 0.0},
               rss_mb={"features": 700.0, "kafka": 400.0}, cpu_s={"features": 0.0, "kafka": 0.0}, redis_mb=2.0)
    ]  # fmt: skip
    for minute, (p99, lag) in enumerate(zip(p99s, features_lag, strict=True), start=1):
        out.append(
            Sample(
                minute, at=60.0 * (minute + 1), seconds=60.0, freshness_p50_ms=p99 / 4, freshness_p99_ms=p99,
                freshness_rows=600_000,
                lag={"features": lag, "memory": 10 * minute, "agent": 5},
                committed={"features": 300_000 * minute, "memory": 3_000 * minute, "agent": 6_000 * minute},
                sent={"features": 290_000.0 * minute},
                rss_mb={"features": 760.0 + minute, "kafka": 420.0, "agent": 600.0 + 12.0 * minute},
                cpu_s={"features": 30.0 * minute, "kafka": 60.0 * minute},
                redis_mb=2.5 + 0.1 * minute,
            )
        )  # fmt: skip
    return out


def test_the_issues_four_figures_are_there_and_read_the_soak_minutes() -> None:
    out = figures(_samples(), warmup=1, rates=RATES)
    assert out["minutes"] == 4.0
    assert out["freshness_p99_ms_worst_minute"] == 80.0 and out["freshness_p99_ms_best_minute"] == 40.0
    assert out["freshness_p99_ms_baseline"] == 20.0 and out["freshness_p99_ratio_worst_to_baseline"] == 4.0
    assert out["lag_end"] == 400 + 40 + 5
    # The agent grew from 612 MB after the warm-up minute to 648 MB: the worst process.
    assert out["rss_growth_pct"] == pytest.approx((648 - 612) / 612 * 100)
    assert out["rss_growth_pct_product"] == out["rss_growth_pct"]  # the agent is one of the product's
    assert out["target_freshness"] == 1.0 and out["minutes_over_freshness_target"] == 0.0
    assert out["target_rss"] == 1.0  # 5.9% < 10%
    assert out["fed_per_s_min_minute"] == pytest.approx(290_000 / 60)


def test_rss_growth_is_measured_from_the_end_of_the_warm_up_per_process() -> None:
    samples = _samples()
    growth = rss_growth(samples, warmup=1)
    assert growth["features"] == pytest.approx((764 - 761) / 761 * 100)  # the jump into minute 1 is warm-up
    assert growth["kafka"] == 0.0
    assert worst_process(samples, warmup=1) == "agent"
    out = figures(samples, warmup=2, rates=RATES)
    assert out["rss_mb_after_warmup_agent"] == 624.0 and out["rss_mb_end_agent"] == 648.0
    assert out["rss_mb_start_features"] == 700.0  # the baseline's
    assert out["rss_mb_start_agent"] == 612.0  # a process first seen in minute 1
    assert warm_sample(samples, warmup=99).minute == 4  # a soak shorter than its warm-up: the last minute


def test_a_minute_over_the_freshness_target_fails_it() -> None:
    out = figures(_samples(p99s=(40.0, 100.0, 80.0, 70.0)), warmup=1, rates=RATES)
    assert out["freshness_p99_ms_worst_minute"] == 100.0 and out["minutes_over_freshness_target"] == 1.0
    assert out["target_freshness"] == 0.0 and out["target_met"] == 0.0
    empty = figures(_samples(p99s=(math.nan, math.nan, math.nan, math.nan)), warmup=1, rates=RATES)
    assert math.isnan(empty["freshness_p99_ms_worst_minute"]) and empty["target_freshness"] == 0.0


def test_lag_trend_and_whether_a_group_keeps_up() -> None:
    assert slope_per_minute([(1, 100.0), (2, 200.0), (3, 300.0)]) == pytest.approx(100.0)
    assert slope_per_minute([(1, 5.0)]) == 0.0
    out = figures(_samples(), warmup=1, rates=RATES)
    assert out["lag_slope_per_min_memory"] == pytest.approx(10.0)
    assert out["lag_after_warmup_features"] == 300.0 and out["lag_max_features"] == 400.0
    # 400 behind at the end, more than after the warm-up, but under a second of 5,000/s: in flight.
    assert keeps_up(300, 400, 5000) and out["target_lag"] == 1.0
    assert not keeps_up(300, 6000, 5000)
    growing = figures(_samples(features_lag=(300, 3_000, 9_000, 20_000)), warmup=1, rates=RATES)
    assert growing["target_lag"] == 0.0 and growing["lag_slope_per_min_features"] > 0


def test_a_soak_without_a_baseline_or_a_minute_is_refused() -> None:
    with pytest.raises(ValueError, match="baseline"):
        figures(_samples()[1:], warmup=1, rates=RATES)
    with pytest.raises(ValueError, match="no minute"):
        figures(_samples()[:1], warmup=1, rates=RATES)


def test_per_minute_throughput_tables_and_progress() -> None:
    samples = _samples()
    assert rate_per_s(samples, "features") == {m: 5000.0 for m in (1, 2, 3, 4)}
    assert rate_per_s(samples, "features", "sent")[2] == pytest.approx(290_000 / 60)
    (flow_title, flow, flow_rows), (_title, memory, memory_rows), (_, cpu, cpu_rows) = tables(samples)
    assert "per minute" in flow_title and [r[0] for r in flow_rows] == ["base", "1", "2", "3", "4"]
    assert flow_rows[0][flow.index("events/s")] == "-" and flow_rows[1][flow.index("events/s")] == "5,000"
    assert flow_rows[1][flow.index("payments fed/s")] == "4,833"
    assert memory == cpu == ["minute", "features", "kafka", "agent"] and memory_rows[0][3] == "-"
    # CPU per minute: 30 s of 60 is half a core; 60 s of 60, a whole one; the agent's is unknown. The base
    # row needs the moment the baseline began (minute -1), which no other table or figure shows.
    assert [r[0] for r in cpu_rows] == ["1", "2", "3", "4"] and cpu_rows[1][1:] == ["50", "100", "-"]
    start = Sample(-1, at=0.0, seconds=0.0, cpu_s={"features": -15.0, "kafka": 0.0}, rss_mb={"ghost": 1.0})
    with_start = tables([start, *samples])
    assert with_start[2][2][0] == ["base", "25", "0", "-"] and with_start[0][2] == flow_rows
    assert "ghost" not in with_start[1][1]
    assert figures([start, *samples], warmup=1, rates=RATES) == figures(samples, warmup=1, rates=RATES)
    line = progress_line(samples[2], 4)
    assert line.startswith("soak minute 2/4: freshness p99 60.0 ms") and "agent 624" in line and "kafka" not in line
    assert "baseline" in progress_line(samples[0], 4)


def test_tables_go_into_the_json_beside_the_flat_figures(tmp_path: Path) -> None:
    result = BenchResult("soak", {"minutes": 1.0}, tables=[BenchTable("t", ["minute", "x"], [["1", "2"]])])
    result.write_json(tmp_path / "soak.json")
    body = json.loads((tmp_path / "soak.json").read_text())
    assert body["minutes"] == 1.0 and body["tables"] == {"t": [{"minute": "1", "x": "2"}]}
    assert "tables" not in BenchResult("plain", {"a": 1.0}).to_json()


def test_process_memory_comes_from_proc() -> None:
    assert soak_procs.rss_mb(os.getpid()) > 1
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.pid in soak_procs.descendants(os.getpid())
        assert soak_procs.tree_pss_mb(os.getpid()) > soak_procs.tree_pss_mb(child.pid) > 0
    finally:
        child.kill()
        child.wait()
    assert math.isnan(soak_procs.rss_mb(child.pid)) and math.isnan(soak_procs.tree_pss_mb(child.pid))


def test_closing_figures_are_read_from_a_commands_table() -> None:
    output = "│ events processed                   │ 1,234,567 │\n│ texts_per_s │ 48.5 │\n"
    assert soak_procs.closing_figure(output, "events processed") == 1_234_567
    assert soak_procs.closing_figure(output, "texts_per_s") == 48.5
    assert math.isnan(soak_procs.closing_figure(output, "payments decided"))


def test_soak_options_and_bad_values_are_one_line_before_anything_starts() -> None:
    assert bench_options("soak", run, ("rate=500", "texts-rate=5")) == {"rate": 500.0, "texts_rate": 5.0}
    with pytest.raises(click.UsageError, match=r"no option 'seconds=1'.*minutes, rate"):
        bench_options("soak", run, ("seconds=1",))
    with pytest.raises(LivectxError, match="bench soak: --minutes 0 must be at least"):
        run(Settings(), minutes=0)
    with pytest.raises(LivectxError, match="-o rate -5 must be at least 1"):
        run(Settings(), rate=-5)


def test_the_minutes_flag_on_the_command_line() -> None:
    runner = CliRunner()
    zero = runner.invoke(cli, ["bench", "soak", "--minutes", "0"])
    assert zero.exit_code == 1 and "--minutes 0 must be at least" in zero.output
    other = runner.invoke(cli, ["bench", "kafka", "--minutes", "2"])
    assert other.exit_code == 2 and "does not run for minutes" in other.output
    both = runner.invoke(cli, ["bench", "soak", "--minutes", "2", "-o", "minutes=3"])
    assert both.exit_code == 2 and "not both" in both.output
    listed = runner.invoke(cli, ["bench", "--list"])
    assert "soak" in listed.output
