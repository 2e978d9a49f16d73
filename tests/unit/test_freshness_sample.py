"""The feature worker's closing freshness figures keep a bounded, uniform sample of every row written."""

from __future__ import annotations

from livectx_ingest.streaming import worker
from livectx_ingest.streaming.worker import FreshnessStats

from livectx.features.incremental import WindowRow


def _rows(ages: range, visible_ms: int) -> dict[str, list[WindowRow]]:
    return {"v": [WindowRow(0, 1, visible_ms - a, {}) for a in ages]}


def test_the_sample_stays_bounded_and_uniform_and_keeps_the_first_row(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(worker, "SAMPLE_LIMIT", 1_000)
    stats = FreshnessStats()
    visible = 10_000_000
    for start in range(0, 100_000, 500):  # 100,000 rows, ages 0..99,999
        stats.record(_rows(range(start, start + 500), visible), visible)
    assert stats.rows_written == 100_000 and len(stats.freshness_ms) == 1_000
    assert stats.freshness_ms[0] == 0  # the warm-up row, which benches drop
    late = sum(1 for a in stats.freshness_ms if a >= 50_000)  # half the rows: about half the sample
    assert 400 < late < 600
