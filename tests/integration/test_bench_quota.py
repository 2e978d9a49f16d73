"""``livectx bench quota`` reports its three runs (issue 15), on a private secured stack it starts itself.

A smoke run at a small scale: the figures of every window are there, the research tenant's quota is the
declared one as the broker reports it, and the unthrottled replay read records. No timing
assertions: the figures themselves are the benchmark's business (see the README).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from livectx.cli import cli


def test_bench_quota_reports_quiet_unthrottled_and_quota(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LIVECTX_STACK_SECURE", raising=False)  # a private secured stack, removed afterwards
    target = tmp_path / "quota.json"
    result = CliRunner().invoke(
        cli, ["bench", "quota", "--scale", "0.05", "-o", "quota_bytes=524288", "--json", str(target)]
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(target.read_text())
    for phase in ("quiet", "unthrottled", "quota"):
        for name in ("decision_p99_ms", "freshness_p99_ms", "decisions", "freshness_rows"):
            assert figures[f"{name}_{phase}"] > 0, f"{name}_{phase}"
    for name in ("decision_p99_ratio_quota", "freshness_p99_ratio_quota"):
        assert figures[name] > 0, name
    assert figures["replay_events_per_s_quiet"] == 0
    # Under the quota the broker may hold a short smoke window's fetches back entirely (it throttles for
    # what the replay took beyond its rate over the quota window before): only the unthrottled one must read.
    assert figures["replay_events_per_s_unthrottled"] > 0 and figures["replay_events_per_s_quota"] >= 0
    assert figures["quota_consumer_byte_rate_live"] == figures["quota_consumer_byte_rate"] == 524288
    assert "private secured stack" in result.output and "target:" in result.output
