import json
from pathlib import Path

from livectx_ingest.streaming.online_writer import Row
from livectx_ingest.streaming.worker import FreshnessStats, MetricsReporter


def _row(newest_ms: int) -> Row:
    return Row("u", 0, 10, newest_ms, 1, True, {})


def test_reporter_exports_interval_freshness_and_lag(tmp_path: Path) -> None:
    stats = FreshnessStats()
    stats.record({"v": [_row(900), _row(950), _row(990)]}, visible_ms=1000)
    path = tmp_path / "metrics" / "g-0.json"
    snapshot = MetricsReporter(stats, lambda: 7, path).report()
    assert snapshot["rows_written"] == 3 and snapshot["rows_in_interval"] == 3
    assert (snapshot["freshness_p50_ms"], snapshot["freshness_p99_ms"]) == (50, 100)
    assert snapshot["consumer_lag"] == 7
    assert json.loads(path.read_text()) == snapshot
    again = MetricsReporter(stats, lambda: None, path).report()  # the interval was drained
    assert again["rows_in_interval"] == 0 and again["freshness_p50_ms"] is None and again["rows_written"] == 3
