"""The monitoring that ships: alerting rules checked and unit-tested by the real ``promtool``, the Grafana
dashboard's JSON and PromQL, the stack's generated Prometheus config, and worker target registration.

promtool is required, not skipped: the bootstrap installs it (``apt-get install -y prometheus``)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import Metric
from prometheus_client.metrics import MetricWrapperBase

import livectx.prometheus as prom
from livectx.prometheus_targets import registered_target, target_file, targets_dir
from livectx.settings import Settings
from livectx.stack.manager import Stack
from livectx.stack.prometheus import PrometheusServer, rules_source

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "livectx.json"
RULES = rules_source()
RULES_TEST = RULES.with_name("livectx-rules.test.yml")
ALERTS = {
    "LivectxFreshnessSLOBreach",
    "LivectxConsumerLagGrowing",
    "LivectxDeadLetters",
    "LivectxVectorWatermarkStuck",
    "LivectxCircuitBreakerOpen",
}
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created"), "gauge": ("",)}


def _promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: apt-get install -y prometheus (scripts/bootstrap.sh installs it)"
    return subprocess.run([promtool, *args], capture_output=True, text=True, cwd=cwd, timeout=60)


def _known_series() -> set[str]:
    """Every series name the metrics of livectx.prometheus expose (``x_total``, ``x_bucket``...)."""
    names = set()
    for value in vars(prom).values():
        if isinstance(value, MetricWrapperBase):
            family: Metric = value.describe()[0]
            names |= {family.name + suffix for suffix in SUFFIXES[family.type]}
    return names


def _metric_names(expr: str) -> set[str]:
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    return set(re.findall(r"\blivectx_[a-z0-9_]+\b", without_strings))


def _rule_exprs() -> list[str]:
    import yaml

    return [rule["expr"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def _dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            exprs.append(variable["query"]["query"])
    return exprs


def test_the_rules_pass_promtool_check() -> None:
    result = _promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    import yaml

    names = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    assert names >= ALERTS


def test_the_alerts_fire_on_synthetic_series() -> None:
    """Dead letters, an open breaker, growing lag, a stuck watermark and a freshness breach all fire
    (and the healthy series beside them stay quiet): ``promtool test rules``."""
    result = _promtool("test", "rules", RULES_TEST.name, cwd=RULES_TEST.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    tested = set(re.findall(r"alertname: (\w+)", RULES_TEST.read_text()))
    assert tested >= ALERTS


def test_the_rules_use_only_livectx_metrics() -> None:
    known = _known_series()
    for expr in _rule_exprs():
        assert _metric_names(expr) <= known, expr


def test_the_dashboard_is_valid_json_over_known_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    titles = {p["title"] for p in panels}
    for wanted in ("Events/s", "Freshness p50 per view", "Freshness p99 per view", "Consumer lag"):
        assert wanted in titles
    assert {"Dead letters by reason", "Context latency p99 by part", "Degraded answers", "Circuit breakers"} <= titles
    known = _known_series()
    exprs = _dashboard_exprs(dashboard)
    for expr in exprs:
        used = _metric_names(expr)
        assert used or expr == 'up{job=~"livectx.*"}', f"no livectx metric in {expr!r}"
        assert used <= known, f"{expr!r} uses {sorted(used - known)}, not in livectx/prometheus.py"
    assert all(p["datasource"]["uid"] == "${datasource}" for p in panels)


def test_the_dashboard_promql_parses(tmp_path: Path) -> None:
    """promtool has no expression checker: each query becomes a recording rule it parses."""
    dashboard = json.loads(DASHBOARD.read_text())
    rules = []
    for n, expr in enumerate(_dashboard_exprs(dashboard)):
        if expr.startswith("label_values("):  # Grafana's own function, not PromQL
            continue
        concrete = expr.replace("$__rate_interval", "1m").replace("$group", ".*").replace("$view", ".*")
        rules.append({"record": f"dashboard:query_{n}", "expr": concrete})
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = _promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def state_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("LIVECTX_STACK_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("LIVECTX_STACK_PROMETHEUS_PORT", "19391")
    return Settings()


def test_prometheus_is_in_the_stack_only_when_asked(state_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "prometheus" not in [s.name for s in Stack(state_settings).services]
    assert [s.name for s in Stack(state_settings, monitoring=True).services][-1] == "prometheus"
    monkeypatch.setenv("LIVECTX_STACK_MONITORING", "1")
    assert "prometheus" in [s.name for s in Stack(Settings()).services]


def test_the_generated_config_passes_promtool(state_settings: Settings) -> None:
    server = PrometheusServer(state_settings)
    server.write_config()
    result = _promtool("check", "config", str(server.config_file))
    assert result.returncode == 0, result.stdout + result.stderr
    config = json.loads(server.config_file.read_text())
    assert config["global"]["scrape_interval"] == "2s"
    assert config["scrape_configs"][0]["file_sd_configs"][0]["files"] == [str(targets_dir(state_settings) / "*.json")]
    assert server.rules_file.read_text() == RULES.read_text()
    argv = server.argv("prometheus")
    assert "--web.listen-address=127.0.0.1:19391" in argv
    assert f"--storage.tsdb.path={state_settings.stack.state_dir / 'prometheus' / 'data'}" in argv
    assert any(server.process.marker in arg for arg in argv)  # how stack down recognises our process


def test_a_worker_registers_while_it_runs(state_settings: Settings) -> None:
    labels = {"job": "livectx-features", "consumer_group": "g/1", "worker_id": "0"}
    with registered_target(state_settings, "features-g/1-0", 9464, labels) as path:
        assert path == target_file(state_settings, "features-g/1-0")
        assert path.name == "features-g_1-0.json"
        assert json.loads(path.read_text()) == [{"targets": ["127.0.0.1:9464"], "labels": labels}]
        assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind
    assert not path.exists()
    with registered_target(state_settings, "none", 0, labels) as nothing:
        assert nothing is None and not targets_dir(state_settings).joinpath("none.json").exists()
    with registered_target(state_settings, "serve-8088", 8088, {"job": "livectx-serve"}, "0.0.0.0") as path:
        assert json.loads(path.read_text())[0]["targets"] == ["127.0.0.1:8088"]


def test_target_labels_never_shadow_metric_labels(state_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Prometheus renames a scraped label that a target label also sets (``exported_worker``): the
    queries of the rules and the dashboard depend on the metrics' own labels surviving."""
    from livectx_ingest.streaming import worker

    metric_labels = set()
    for value in vars(prom).values():
        if isinstance(value, MetricWrapperBase):
            metric_labels |= set(value._labelnames)
    written: list[dict[str, str]] = []
    monkeypatch.setattr(worker, "register_target", lambda _s, _name, _port, labels: written.append(labels))
    worker._register(state_settings, "livectx-features", "0", 1234)
    assert written and not (set(written[0]) - {"job"}) & metric_labels


def test_the_embedding_worker_cli_registers_its_metrics_port(
    state_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ingest run embeddings --metrics-port N``: registered while the worker runs, removed after."""
    from types import SimpleNamespace

    from click.testing import CliRunner
    from livectx_ingest.embeddings import worker as embeddings_worker

    import livectx.prometheus
    from livectx.cli import cli

    seen: list[Any] = []

    def fake_worker(settings: Settings, **kwargs: Any) -> Any:
        seen.append(
            json.loads(target_file(settings, f"embeddings-livectx-embeddings-{kwargs['worker_id']}").read_text())
        )
        return SimpleNamespace(summary=lambda: {"embedded": 0})

    monkeypatch.setattr(livectx.prometheus, "serve_metrics", lambda port: SimpleNamespace(server_port=port))
    monkeypatch.setattr(embeddings_worker, "run_embeddings_worker", fake_worker)
    result = CliRunner().invoke(cli, ["ingest", "run", "embeddings", "--metrics-port", "19465", "--worker-id", "7"])
    assert result.exit_code == 0, result.output
    assert seen == [
        [
            {
                "targets": ["127.0.0.1:19465"],
                "labels": {"job": "livectx-embeddings", "consumer_group": "livectx-embeddings", "worker_id": "7"},
            }
        ]
    ]
    assert not list(targets_dir(state_settings).glob("*.json"))
