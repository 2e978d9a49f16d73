"""The Kafka Connect service of the local stack: opt-in, and configured for plain JSON envelopes on the broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from livectx.settings import Settings
from livectx.stack.connect import ConnectWorker
from livectx.stack.manager import Stack


@pytest.fixture
def state_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("LIVECTX_STACK_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("LIVECTX_STACK_CONNECT_PORT", "19383")
    return Settings()


def test_connect_is_in_the_stack_only_when_asked(state_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "connect" not in [s.name for s in Stack(state_settings).services]
    assert [s.name for s in Stack(state_settings, cdc=True).services][-1] == "connect"
    monkeypatch.setenv("LIVECTX_STACK_CDC", "1")
    assert "connect" in [s.name for s in Stack(Settings()).services]


def test_the_worker_is_distributed_on_the_stack_broker_with_schemaless_json(state_settings: Settings) -> None:
    props = dict(line.split("=", 1) for line in ConnectWorker(state_settings).worker_properties().splitlines() if line)
    assert props["bootstrap.servers"] == f"127.0.0.1:{state_settings.stack.kafka_port}"
    assert props["listeners"] == "http://127.0.0.1:19383"
    assert props["value.converter.schemas.enable"] == "false"
    assert {props[k] for k in ("config.storage.topic", "offset.storage.topic", "status.storage.topic")} == {
        "livectx.connect.configs",
        "livectx.connect.offsets",
        "livectx.connect.status",
    }
    assert props["connector.client.config.override.policy"] == "All"


def test_a_stopped_worker_is_not_healthy(state_settings: Settings) -> None:
    assert ConnectWorker(state_settings).is_healthy(timeout_s=0.2) is False
