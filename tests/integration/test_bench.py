"""The benchmark entry point prints both baselines and writes flat JSON (no timing assertions)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from livectx.cli import cli
from livectx.redis_client import redis_client


def test_kafka_and_online_read_baselines(stack, feature_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    runner = CliRunner()
    kafka_json = tmp_path / "kafka.json"
    result = runner.invoke(cli, ["bench", "kafka", "--scale", "0.02", "--json", str(kafka_json)])
    assert result.exit_code == 0, result.output
    assert "produce_msgs_per_s" in result.output
    figures = json.loads(kafka_json.read_text())
    assert figures["messages"] == 4000
    assert figures["produce_msgs_per_s"] > 0 and figures["consume_msgs_per_s"] > 0

    read_json = tmp_path / "online.json"
    result = runner.invoke(cli, ["bench", "online-read", "--scale", "0.05", "--json", str(read_json)])
    assert result.exit_code == 0, result.output
    figures = json.loads(read_json.read_text())
    for name in (
        "feast_p50_ms_1",
        "feast_p99_ms_1",
        "raw_p50_ms_1",
        "feast_p50_ms_100",
        "feast_p99_ms_100",
        "raw_p50_ms_100",
    ):
        assert figures[name] > 0, name
    assert figures["feast_p99_ms_1"] >= figures["feast_p50_ms_1"]


def test_features_benchmark_reports_ratio_and_freshness(stack, feature_store, settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "features.json"
    client = redis_client(settings)
    bench_keys = "livectx:engine:bench-*"  # the engine keys of the bench's consumer groups
    before = set(client.scan_iter(match=bench_keys, count=1000))
    result = CliRunner().invoke(cli, ["bench", "features", "--scale", "0.05", "--json", str(target)])
    assert result.exit_code == 0, result.output
    # It leaves Redis as it found it: no state, epochs or offsets of its dozen runs' groups stay behind.
    assert set(client.scan_iter(match=bench_keys, count=1000)) == before
    figures = json.loads(target.read_text())
    for name in (
        "events_per_s",
        "raw_consume_per_s",
        "throughput_ratio",
        "freshness_p50_ms",
        "freshness_p99_ms",
        "rate",
        "events_per_s_without_metrics",
        "avro_events_per_s",
        "avro_raw_consume_per_s",
        "avro_throughput_ratio",
        "avro_vs_json",
    ):
        assert figures[name] > 0, name
    assert figures["metrics_overhead"] < 1
    avro_vs_json = figures["avro_throughput_ratio"] / figures["json_throughput_ratio_best"]
    assert abs(figures["avro_vs_json"] - avro_vs_json) <= 1e-4 + 1e-3 * avro_vs_json  # figures are rounded
    ratio = figures["events_per_s"] / figures["raw_consume_per_s"]
    assert abs(figures["throughput_ratio"] - ratio) <= 1e-4 + 1e-3 * ratio
    assert figures["freshness_p99_ms"] >= figures["freshness_p50_ms"]
    # CPU over the freshness run: the engine's per event, and as cores for it and the feeder
    assert figures["freshness_engine_cpu_us_per_event"] > 0
    assert figures["freshness_engine_cores"] > 0 and figures["freshness_feeder_cores"] > 0


def test_embeddings_benchmark_reports_every_figure(stack, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "embeddings.json"
    result = CliRunner().invoke(cli, ["bench", "embeddings", "--scale", "0.03", "--json", str(target)])
    assert result.exit_code == 0, result.output
    figures = json.loads(target.read_text())
    for name in (
        "pipeline_texts_per_s",
        "raw_texts_per_s",
        "ratio",
        "searchable_p50_ms",
        "searchable_p99_ms",
        "query_p50_ms",
        "query_p99_ms",
        "recall_at_10",
        "vectors",
        "torch_texts_per_s",
        "onnx_texts_per_s",
        "onnx_speedup",
        "onnx_recall_at_10",
        "onnx_mean_cosine",
        "onnx_int8_texts_per_s",
        "onnx_int8_recall_at_10",
    ):
        assert figures[name] > 0, name
    assert figures["onnx_recall_at_10"] <= 1 and figures["onnx_mean_cosine"] <= 1 + 1e-4
    assert figures["vectors"] == 3000 and 0 < figures["recall_at_10"] <= 1
    assert abs(figures["ratio"] - figures["pipeline_texts_per_s"] / figures["raw_texts_per_s"]) < 1e-3
    assert figures["searchable_p99_ms"] >= figures["searchable_p50_ms"]
    assert figures["searchable_records"] == int(figures["rate"] * 5)  # every paced text became searchable


def test_context_benchmark_reports_every_figure(stack, feature_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "context.json"
    result = CliRunner().invoke(cli, ["bench", "context", "--scale", "0.05", "--json", str(target)])
    assert result.exit_code == 0, result.output
    figures = json.loads(target.read_text())
    for name in (
        "context_p99_ms",
        "features_p99_ms",
        "vectors_p99_ms",
        "fastpath_p50_ms_1",
        "fastpath_p50_ms_100",
        "raw_p50_ms_1",
        "raw_p50_ms_100",
        "feast_p50_ms_1",
        "feast_p50_ms_100",
        "mcp_p50_ms",
        "mcp_p99_ms",
        "mcp_direct_p50_ms",
        "mcp_direct_p99_ms",
    ):
        assert figures[name] > 0, name
    assert abs(figures["mcp_over_direct_p50"] - figures["mcp_p50_ms"] / figures["mcp_direct_p50_ms"]) < 1e-3
    slower = max(figures["features_p99_ms"], figures["vectors_p99_ms"])
    assert abs(figures["context_over_slower_part_p99"] - figures["context_p99_ms"] / slower) < 1e-3


def test_tier_benchmark_archive_and_replay_figures(stack, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from livectx_benchmarks.tier import measure_archive

    from livectx.settings import get_settings

    figures = measure_archive(get_settings(), scale=0.02, work_dir=tmp_path)
    assert figures["events"] == 2000 and figures["archive_files"] >= 3  # one file per partition at least
    for name in ("archive_events_per_s", "raw_consume_per_s", "replay_events_per_s", "archive_bytes_per_event"):
        assert figures[name] > 0, name
    assert abs(figures["archive_ratio"] - figures["archive_events_per_s"] / figures["raw_consume_per_s"]) < 1e-9


def test_tier_benchmark_reports_every_figure(stack, feature_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "tier.json"
    result = CliRunner().invoke(cli, ["bench", "tier", "--scale", "0.01", "--json", str(target)])
    assert result.exit_code == 0, result.output
    figures = json.loads(target.read_text())
    for name in ("archive_ratio", "replay_events_per_s", "trainset_seconds", "trainset_peak_mb", "feast_hist_seconds"):
        assert figures[name] > 0, name
