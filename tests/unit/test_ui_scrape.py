"""The dashboard's own scraping: quantiles as PromQL's histogram_quantile computes them, freshness points
from the increments between scrapes, event rates, dead letters by kind and models in use per agent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from livectx.ui.scrape import MetricsHistory, Samples, Target, parse, quantile, read_targets


def test_quantiles_interpolate_within_a_bucket_like_promql() -> None:
    buckets = [(0.1, 10.0), (0.5, 60.0), (1.0, 100.0), (float("inf"), 100.0)]
    assert quantile(0.5, buckets) == pytest.approx(0.1 + 0.4 * (40 / 50))  # rank 50 in (0.1, 0.5]
    assert quantile(0.99, buckets) == pytest.approx(0.5 + 0.5 * (39 / 40))
    assert quantile(0.5, [(0.1, 0.0), (float("inf"), 0.0)]) is None  # nothing observed: no point
    assert quantile(0.99, [(0.1, 1.0), (float("inf"), 10.0)]) == 0.1  # in the open top bucket


def _body(rows_fast: int, rows_slow: int, events: int, dead: int) -> str:
    total = rows_fast + rows_slow
    return f"""# TYPE livectx_feature_freshness_seconds histogram
livectx_feature_freshness_seconds_bucket{{view="v",le="0.1"}} {rows_fast}
livectx_feature_freshness_seconds_bucket{{view="v",le="10.0"}} {total}
livectx_feature_freshness_seconds_bucket{{view="v",le="+Inf"}} {total}
livectx_feature_freshness_seconds_count{{view="v"}} {total}
livectx_feature_freshness_seconds_sum{{view="v"}} 1.0
# TYPE livectx_events_processed_total counter
livectx_events_processed_total{{group="g"}} {events}
# TYPE livectx_dead_letters_total counter
livectx_dead_letters_total{{worker="w",reason="malformed"}} {dead}
# TYPE livectx_model_version_info gauge
livectx_model_version_info{{agent="scorer",model="m",version="v2"}} 1
"""


def test_history_charts_the_increments_between_scrapes(tmp_path: Path) -> None:
    (tmp_path / "w.json").write_text(json.dumps([{"targets": ["127.0.0.1:1"], "labels": {"job": "livectx-x"}}]))
    (tmp_path / "broken.json").write_text("{not json")
    assert read_targets(tmp_path) == [Target("127.0.0.1:1", {"job": "livectx-x"})]
    bodies = iter([_body(10, 0, 100, 1), _body(10, 10, 300, 2)])  # second scrape: 10 new rows, all slow
    clock = iter([1000.0, 1002.0])
    history = MetricsHistory(tmp_path, fetch=lambda _t: parse(next(bodies)), clock=lambda: next(clock))
    history.poll()
    history.poll()
    first, second = history.freshness["v"]
    assert first["p50"] == pytest.approx(0.05) and first["rows"] == 10  # everything since the target started
    assert second["p50"] == pytest.approx(0.1 + 9.9 * 0.5) and second["rows"] == 10  # only the new rows
    assert [p["events_per_s"] for p in history.rates["g"]] == [100.0]  # 200 events in 2 s
    assert history.dead_letter_counts() == {"malformed": 2.0}
    [model] = history.models_in_use()
    assert (model["agent"], model["model"], model["version"], model["job"]) == ("scorer", "m", "v2", "livectx-x")


def test_a_target_that_does_not_answer_is_shown_down(tmp_path: Path) -> None:
    (tmp_path / "dead.json").write_text(json.dumps([{"targets": ["127.0.0.1:9"], "labels": {"job": "j"}}]))

    def refuse(_target: Target) -> Samples:
        raise ConnectionRefusedError("refused")

    history = MetricsHistory(tmp_path, fetch=refuse)
    history.poll()
    assert history.snapshot()["targets"]["j@127.0.0.1:9"]["up"] is False
    assert history.freshness == {}
