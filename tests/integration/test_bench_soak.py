"""``livectx bench soak`` end to end at a small size: the real workers, agent and feeders as separate processes
on the stack, a few short "minutes" at low rates.

What a short run can check is that everything ran and was measured, and that nothing was lost: each
worker processed exactly what was produced into its topic, every per-minute figure is there. No timing
assertions: the figures themselves are the benchmark's business (see the README).
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from livectx.cli import cli
from livectx.stack.manager import Stack

PROCESSES = ("features", "embeddings", "agent", "producer", "texts", "agent_feed")


def test_bench_soak_runs_everything_and_loses_nothing(stack: Stack, tmp_path: Path) -> None:
    target = tmp_path / "soak.json"
    options = ["-o", "minute_s=5", "-o", "rate=500", "-o", "texts_rate=5", "-o", "agent_rate=20"]
    result = CliRunner().invoke(cli, ["bench", "soak", "--minutes", "0.25", *options, "--json", str(target)])
    assert result.exit_code == 0, result.output
    figures = json.loads(target.read_text())
    assert figures["minutes"] > 0.2 and figures["minute_s"] == 5
    for name in ("rss_growth_pct", "lag_end", "freshness_p99_ms_worst_minute", "freshness_p99_ms_baseline"):
        assert isinstance(figures[name], float), name
    assert figures["freshness_p99_ms_worst_minute"] > 0 and figures["lag_end"] >= 0
    # Nothing lost, nothing doubled: each consumer reached the end of its topic, and its own closing count
    # equals what was produced (the feeders' records plus the bench's warm-up record).
    for group in ("features", "memory", "agent"):
        assert figures[f"drained_{group}"] == 1, group
    assert figures["events_processed"] == figures["produced_features"] > figures["events_sent"] > 0
    assert figures["texts_consumed"] == figures["produced_memory"] > figures["texts_sent"] > 0
    # Within one micro-batch the last change to an id wins (an upsert then its retraction: one delete).
    assert 0 < figures["vectors_written"] + figures["vectors_deleted"] <= figures["texts_consumed"]
    assert figures["decisions"] == figures["produced_agent"] > figures["agent_payments_sent"] > 0
    for name in (*PROCESSES, "kafka", "redis", "postgres"):
        assert figures[f"rss_mb_end_{name}"] > 0, name
    assert figures["redis_memory_mb_end"] > 0
    minutes = figures["tables"]["soak per minute (base: the quiet baseline)"]
    assert [row["minute"] for row in minutes] == ["base", "1", "2", "3"]
    assert "targets:" in result.output and "RSS MB per process" in result.output
