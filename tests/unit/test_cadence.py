"""The engine's checkpoint cadence as pure logic: every interval while keeping up, a bounded share of the
time under a backlog, with the cost per row learnt from the last checkpoint."""

from __future__ import annotations

import pytest
from livectx_ingest.streaming.cadence import BACKLOG_FACTOR, BACKLOG_SHARE, ROW_COST_S, CheckpointCadence


def test_keeping_up_a_checkpoint_starts_every_interval_and_no_consume_waits_past_it() -> None:
    cadence = CheckpointCadence(0.01, now=100.0)
    assert cadence.poll_timeout(100.0, poll_s=0.005) == 0.005
    assert cadence.poll_timeout(100.008, poll_s=0.005) == pytest.approx(0.002)
    assert cadence.poll_timeout(100.5, poll_s=0.005) == 0.0
    cadence.observe(backlog=False, dirty_rows=10_000)  # rows do not matter while keeping up
    assert not cadence.due(100.0099) and cadence.due(100.01)
    cadence.started(100.0105)
    cadence.finished(100.0125, rows=100)
    assert not cadence.due(100.0204) and cadence.due(100.0205)  # counted start to start, not end to start


def test_under_a_backlog_checkpoints_space_out_to_the_factor_and_to_their_share_of_the_time() -> None:
    cadence = CheckpointCadence(0.01, now=0.0)
    cadence.observe(backlog=True, dirty_rows=10)  # cheap: the factor bounds it
    assert cadence.wait_s == pytest.approx(BACKLOG_FACTOR * 0.01)
    cadence.observe(backlog=True, dirty_rows=1_000_000)  # costly: the estimate from ROW_COST_S bounds it
    assert cadence.wait_s == pytest.approx(BACKLOG_SHARE * ROW_COST_S * 1_000_000)
    cadence.observe(backlog=False, dirty_rows=1_000_000)  # caught up again: back to the interval
    assert cadence.wait_s == 0.01
    cadence.observe(backlog=True, dirty_rows=10)
    cadence.grow(dirty_rows=100_000)  # rows applied after the consume count too, and never shrink it
    assert cadence.wait_s == pytest.approx(BACKLOG_SHARE * ROW_COST_S * 100_000)
    cadence.grow(dirty_rows=1)
    assert cadence.wait_s == pytest.approx(BACKLOG_SHARE * ROW_COST_S * 100_000)


def test_a_simulated_catch_up_spends_at_most_its_share_checkpointing_once_the_cost_is_learnt() -> None:
    """A backlog over 10,000 entities where a checkpoint really costs 50 us a row (2.5x the initial
    estimate): from the second checkpoint on, each takes at most 1/BACKLOG_SHARE of the time since the
    previous one started, the time it paid for."""
    true_cost, events_per_step, entities = 50e-6, 500, 10_000
    now, cadence, dirty = 0.0, CheckpointCadence(0.01, now=0.0), 0
    starts, durations = [], []
    while now < 120.0:
        now += 0.01  # one consume + apply step of the loop
        dirty = min(entities, dirty + events_per_step)
        cadence.observe(backlog=True, dirty_rows=dirty)
        if cadence.due(now):
            cadence.started(now)
            starts.append(now)
            durations.append(true_cost * dirty)
            now += true_cost * dirty
            cadence.finished(now, dirty)
            dirty = 0
    assert cadence.row_cost_s == pytest.approx(true_cost)
    assert len(starts) > 5
    for n in range(1, len(starts)):
        assert durations[n] <= (starts[n] - starts[n - 1]) / BACKLOG_SHARE * 1.01


def test_a_checkpoint_that_wrote_nothing_keeps_the_learnt_cost() -> None:
    cadence = CheckpointCadence(0.01, now=0.0)
    cadence.started(1.0)
    cadence.finished(1.5, rows=0)
    assert cadence.row_cost_s == ROW_COST_S
    cadence.started(2.0)
    cadence.finished(2.002, rows=100)
    assert cadence.row_cost_s == pytest.approx(20e-6)


def test_rows_waiting_past_the_bound_make_a_checkpoint_due_whatever_the_time() -> None:
    cadence = CheckpointCadence(0.01, now=0.0, max_rows=1_000)
    cadence.observe(backlog=True, dirty_rows=999)
    assert not cadence.due(0.001) and not cadence.full(999)
    assert cadence.full(1_000)  # a catch-up over many entities writes them in bounded checkpoints
