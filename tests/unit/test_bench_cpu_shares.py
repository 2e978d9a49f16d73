"""The freshness runs' CPU figures: per event for the engine, as cores for every process, over one span."""

from __future__ import annotations

import os

import pytest
from livectx_benchmarks.cpu_shares import CpuShares


def ticking(*values: float):  # type: ignore[no-untyped-def]
    return iter(values).__next__


def test_engine_cpu_per_event_and_cores_over_the_span() -> None:
    # wall 10 s -> 14 s; this process's CPU 3.0 s -> 5.8 s
    shares = CpuShares({}, clock=ticking(10.0, 14.0), cpu=ticking(3.0, 5.8))
    assert shares.figures(20_000, 0.0, 0.0) == {}  # never stopped: nothing to report
    shares.start()
    shares.start()  # only the first start counts (it would read the clocks again)
    shares.stop()
    shares.stop()
    figures = shares.figures(20_000, feeder_cpu_s=2.0, feeder_wall_s=10.0)
    assert figures["engine_cpu_us_per_event"] == pytest.approx(2.8 / 20_000 * 1e6)
    assert figures["engine_cores"] == pytest.approx(0.7)
    assert figures["feeder_cores"] == pytest.approx(0.2)


def test_a_stop_without_a_start_reports_nothing() -> None:
    shares = CpuShares({}, clock=ticking(), cpu=ticking())
    shares.stop()
    assert shares.figures(1, 1.0, 1.0) == {}


def test_servers_are_read_from_proc_by_pid() -> None:
    shares = CpuShares({"this": os.getpid()})
    shares.start()
    sum(i * i for i in range(200_000))  # some CPU between the two readings
    shares.stop()
    figures = shares.figures(1, 0.0, 0.0)
    assert figures["this_cores"] >= 0 and figures["engine_cores"] > 0
    assert "feeder_cores" not in figures  # the feeder reported no span
