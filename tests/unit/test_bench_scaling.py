"""``bench scaling``'s pure part: the sweep plan, the ratios, the flat figures, the tables and the plot
(no services; no timings are asserted)."""

from __future__ import annotations

from pathlib import Path

import pytest
from livectx_benchmarks.cli import BENCHMARKS, bench_options
from livectx_benchmarks.scaling import run
from livectx_benchmarks.scaling_report import (
    ENTITY_COUNTS,
    MAX_VECTORS,
    VECTOR_COUNTS,
    Point,
    add_ratios,
    figures,
    plan,
    table_rows,
    write_plot,
)


def test_the_default_plan_is_the_issues_sweeps_with_vectors_capped() -> None:
    p = plan()
    assert p.entities == ENTITY_COUNTS
    assert p.views == (1, 4, 16) and p.workers == (1, 2)
    assert p.vectors == tuple(v for v in VECTOR_COUNTS if v <= MAX_VECTORS)
    assert 100_000 in p.vectors and 1_000_000 not in p.vectors
    assert plan(max_vectors=1_000_000).vectors[-1] == 1_000_000


def test_every_cardinality_point_reads_at_least_one_event_per_entity() -> None:
    for scale in (0.01, 0.1, 1.0, 3.0):
        p = plan(scale)
        assert all(p.events_for(k) >= k for k in p.entities)
    assert plan().events_for(10_000) == plan().events_for(100_000) < plan().events_for(1_000_000)
    assert plan(0.01).entities == (100, 1000, 10_000)
    assert plan(max_entities=100_000).entities == (10_000, 100_000)


def test_ratios_are_against_the_sweeps_first_point() -> None:
    points = [Point("views", 1, {"events_per_s": 100.0}), Point("views", 4, {"events_per_s": 40.0})]
    add_ratios(points)
    assert [p.metrics["ratio_to_first"] for p in points] == [1.0, 0.4]
    built = [Point("vectors", 100_000, {"index_s": 10.0}), Point("vectors", 300_000, {"index_s": 35.0})]
    add_ratios(built)
    assert built[1].metrics["index_s_per_first"] == 3.5


def test_figures_are_flat_and_tables_formatted_per_sweep() -> None:
    points = [
        Point("entities", 10_000, {"events_per_s": 1234.5, "ratio_to_raw": 0.5}),
        Point("vectors", 100_000, {"index_s": 12.0, "query_p99_ms": 3.25}),
    ]
    assert figures(points) == {
        "entities_10000_events_per_s": 1234.5,
        "entities_10000_ratio_to_raw": 0.5,
        "vectors_100000_index_s": 12.0,
        "vectors_100000_query_p99_ms": 3.25,
    }
    columns, rows = table_rows(points, "entities")
    assert columns[:3] == ["entities", "events/s", "x raw consume"]
    assert rows == [["10,000", "1,234", "0.50", "-", "-", "-", "-"]]
    assert table_rows(points, "workers")[1] == []


def test_the_plot_has_a_panel_per_sweep(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    points = [
        Point(s, v, {"events_per_s": 10.0 * v, "rss_peak_mb": 700.0})
        for s in ("entities", "views", "workers")
        for v in (1, 4)
    ]
    points += [Point("vectors", 100_000, {"index_s": 40.0, "query_p99_ms": 3.0})]
    written = write_plot(points, tmp_path / "scaling.png")
    assert written is not None and written.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_bench_is_registered_with_its_options() -> None:
    assert BENCHMARKS["scaling"][0] == "livectx_benchmarks.scaling:run"
    assert bench_options("scaling", run, ("max_vectors=1000000", "max-entities=100000")) == {
        "max_vectors": 1_000_000.0,
        "max_entities": 100_000.0,
    }
