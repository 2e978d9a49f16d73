"""Honest event time: a run without a rate is back-dated to end now; a compressed one never runs ahead."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from livectx import timebase
from livectx.produce import generated_events
from livectx.repo import current_repo
from livectx.settings import Settings


def test_an_unpaced_run_ends_now_never_in_the_future() -> None:
    repo = current_repo()
    start = timebase.back_dated_start(lambda s: generated_events(repo, "fraud", 7, s), 5000)
    now = datetime.now(UTC)
    last = list(itertools.islice(generated_events(repo, "fraud", 7, start), 5000))[-1][1].event_time
    assert now - timedelta(seconds=5) <= last <= now


def test_a_compressed_run_meets_the_clock_at_its_end() -> None:
    start = timebase.compressed_start(count=6000, rate=100.0, speedup=10.0)  # 60 s of clock, 600 s of event time
    assert abs((datetime.now(UTC) - start).total_seconds() - 540) < 2


def test_the_speedup_is_recorded_and_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVECTX_DATA_DIR", str(tmp_path))
    settings = Settings()
    assert timebase.note(settings) is None
    timebase.record(settings, 10.0, None, None)
    assert timebase.speedup(settings) == 10.0 and "compressed 10x" in (timebase.note(settings) or "")
    timebase.record(settings, 1.0, None, None)
    assert timebase.note(settings) is None
