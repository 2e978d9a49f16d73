"""``livectx agents run fraud|router --metrics-port N``: the agent serves ``/metrics`` while it runs and
registers it for the stack's Prometheus (file_sd), like the ingest workers; the file is gone afterwards."""

from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner

from livectx.cli import cli


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("agent", ["fraud", "router"])
def test_an_agent_serves_metrics_and_registers_its_target(
    agent: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import livectx_agents.example_fraud as fraud_module
    import livectx_agents.example_router as router_module

    monkeypatch.setenv("LIVECTX_STACK_STATE_DIR", str(tmp_path / "state"))
    targets = tmp_path / "state" / "prometheus" / "targets"
    port = _free_port()
    seen: dict[str, Any] = {}

    def while_running(*_args: Any, **_kwargs: Any) -> tuple[Any, Any]:
        # What Prometheus would see while the agent runs: its target file and its /metrics.
        seen["files"] = {p.name: json.loads(p.read_text()) for p in targets.glob("*.json")}
        seen["body"] = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        stats = SimpleNamespace(decided=0, declined=0, degraded=0, precision=0.0, recall=0.0, tp=0, fp=0, consumed=0)
        return SimpleNamespace(stats=stats, scorer=SimpleNamespace(name="rules"), notified=0, routed={}), stats

    monkeypatch.setattr(fraud_module, "run_fraud_agent", while_running)
    monkeypatch.setattr(router_module, "run_router", while_running)
    result = CliRunner().invoke(cli, ["agents", "run", agent, "--metrics-port", str(port), "--worker-id", "3"])
    assert result.exit_code == 0, result.output
    [body] = seen["files"].values()
    assert body == [
        {
            "targets": [f"127.0.0.1:{port}"],
            "labels": {"job": f"livectx-agent-{agent}", "consumer_group": f"livectx-{agent}", "worker_id": "3"},
        }
    ]
    assert "# TYPE livectx_model_version_info gauge" in seen["body"]
    assert not list(targets.glob("*.json")), "the target file outlives the agent"
