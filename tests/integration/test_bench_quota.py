"""``livectx bench quota`` reports its three runs (issue 15), on a private secured stack it starts itself.

A smoke run at a small scale: the figures of every window are there, the research tenant's quota is the
declared one as the broker reports it, and the unthrottled replay read records. No timing
assertions: the figures themselves are the benchmark's business (see the README).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest


class _Result(NamedTuple):
    exit_code: int
    output: str


def test_bench_quota_reports_quiet_unthrottled_and_quota(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LIVECTX_STACK_SECURE", raising=False)  # a private secured stack, removed afterwards
    target = tmp_path / "quota.json"
    # In a process of its own, as a user runs it: the bench runs a feature engine in-process against the
    # private stack it removes at the end, and the engine's Kafka clients (kept by its gc.freeze) would
    # otherwise go on reconnecting to the dead broker for the rest of the test session.
    command = [sys.executable, "-m", "livectx", "bench", "quota", "--scale", "0.05", "-o", "quota_bytes=524288"]
    done = subprocess.run([*command, "--json", str(target)], capture_output=True, text=True, timeout=900)
    result = _Result(done.returncode, done.stdout + done.stderr)
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
