"""The local Kafka cluster's layout and configuration (no broker needed): ports, quorum, replication, and
that topics as code takes its replication from the settings."""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace

import pytest

from livectx.errors import ConfigError, ServiceError
from livectx.settings import Settings, get_settings
from livectx.stack.connect import ConnectWorker
from livectx.stack.kafka import KafkaBroker, check_topology
from livectx.stack.manager import Stack
from livectx.topics import Replication, TopicSpec, plan

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("LIVECTX_STACK_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("LIVECTX_STACK_KAFKA_PORT", "29092")
    monkeypatch.setenv("LIVECTX_STACK_KAFKA_CONTROLLER_PORT", "29093")
    monkeypatch.setenv("LIVECTX_STACK_KAFKA_BROKERS", "3")
    monkeypatch.delenv("LIVECTX_KAFKA_BOOTSTRAP_SERVERS", raising=False)
    return Settings()


def _props(broker: KafkaBroker) -> dict[str, str]:
    return dict(line.split("=", 1) for line in broker.server_properties().splitlines() if line)


def test_one_node_is_the_default_and_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVECTX_STACK_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("LIVECTX_STACK_KAFKA_BROKERS", raising=False)
    monkeypatch.delenv("LIVECTX_KAFKA_BOOTSTRAP_SERVERS", raising=False)
    settings = Settings()
    port = settings.stack.kafka_port
    assert settings.stack.kafka_brokers == 1 and settings.kafka_bootstrap == f"127.0.0.1:{port}"
    [node] = [s for s in Stack(settings).services if s.name.startswith("kafka")]
    props = _props(node)  # type: ignore[arg-type]
    assert props["controller.quorum.bootstrap.servers"] == f"127.0.0.1:{settings.stack.kafka_controller_port}"
    assert "controller.quorum.voters" not in props
    assert props["transaction.state.log.replication.factor"] == "1" and props["min.insync.replicas"] == "1"


def test_three_nodes_each_with_its_ports_data_dir_and_a_static_quorum(cluster: Settings) -> None:
    nodes = [s for s in Stack(cluster).services if s.name.startswith("kafka")]
    assert [n.name for n in nodes] == ["kafka", "kafka-2", "kafka-3"]
    assert [n.address for n in nodes] == ["127.0.0.1:29092", "127.0.0.1:29094", "127.0.0.1:29096"]
    assert cluster.kafka_bootstrap == "127.0.0.1:29092,127.0.0.1:29094,127.0.0.1:29096"
    assert len({n.data_dir for n in nodes}) == 3 and len({n.process.pid_file for n in nodes}) == 3  # type: ignore[attr-defined]
    props = _props(nodes[2])  # type: ignore[arg-type]
    assert props["node.id"] == "3"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:29096,CONTROLLER://127.0.0.1:29097"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:29093,2@127.0.0.1:29095,3@127.0.0.1:29097"
    assert "controller.quorum.bootstrap.servers" not in props
    for key in ("default.replication.factor", "offsets.topic.replication.factor",
                "transaction.state.log.replication.factor"):  # fmt: skip
        assert props[key] == "3", key
    assert props["min.insync.replicas"] == "2" and props["transaction.state.log.min.isr"] == "2"


def test_connect_storage_follows_the_broker_count(cluster: Settings) -> None:
    props = dict(line.split("=", 1) for line in ConnectWorker(cluster).worker_properties().splitlines() if line)
    assert props["bootstrap.servers"] == cluster.kafka_bootstrap
    assert props["offset.storage.replication.factor"] == "3"


def test_clashing_ports_and_a_data_dir_of_another_size_are_refused(
    cluster: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIVECTX_STACK_KAFKA_CONTROLLER_PORT", "29094")
    with pytest.raises(ConfigError, match="clashing or invalid ports"):
        get_settings(reload=True)
    home = cluster.stack.state_dir / "kafka"
    home.mkdir(parents=True)
    check_topology(cluster, home, formatted=False)
    with pytest.raises(ServiceError, match=r"for 1 broker\(s\), the settings ask for 3.*--purge"):
        check_topology(cluster, home, formatted=True)  # a log dir formatted before clusters existed
    (home / "brokers").write_text("3\n")
    check_topology(cluster, home, formatted=True)


def test_down_and_status_see_a_node_left_from_a_larger_cluster(cluster: Settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    run = cluster.stack.state_dir / "run"
    run.mkdir(parents=True)
    (run / "kafka-3.pid").write_text("999999\n")
    monkeypatch.setenv("LIVECTX_STACK_KAFKA_BROKERS", "1")
    assert [s.name for s in Stack(Settings()).services if s.name.startswith("kafka")] == ["kafka", "kafka-3"]


class _Admin:
    """Enough of AdminClient for ``plan``: one existing topic with 3 partitions of ``replicas`` copies."""

    def __init__(self, replicas: int, min_isr: str = "2") -> None:
        partition = SimpleNamespace(replicas=list(range(replicas)))
        self.topics = {"t.exists": SimpleNamespace(partitions=dict.fromkeys(range(3), partition))}
        self.min_isr = min_isr

    def list_topics(self, timeout: float) -> SimpleNamespace:
        return SimpleNamespace(topics=self.topics)

    def describe_configs(self, resources):  # type: ignore[no-untyped-def]
        entry = SimpleNamespace(value=self.min_isr)
        done = SimpleNamespace(
            result=lambda: {"min.insync.replicas": entry, "retention.ms": SimpleNamespace(value="1")}
        )
        return dict.fromkeys(resources, done)


def test_topics_take_replication_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVECTX_KAFKA_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("LIVECTX_KAFKA_MIN_INSYNC_REPLICAS", "2")
    replication = Replication.from_settings(Settings())
    assert replication == Replication(3, 2)
    specs = [TopicSpec("t.exists", 3, {"retention.ms": "1"}), TopicSpec("t.new", 2, {"retention.ms": "1"})]
    changes = {c.topic: c for c in plan(_Admin(replicas=3), specs, replication)}
    assert changes["t.new"].action == "create" and "replication 3" in changes["t.new"].detail
    assert "min.insync.replicas=2" in changes["t.new"].detail
    assert (changes["t.exists"].action, changes["t.exists"].detail) == ("unchanged", "replication 3")
    drift = [c for c in plan(_Admin(replicas=1, min_isr="1"), specs, replication) if c.topic == "t.exists"]
    assert [c.action for c in drift] == ["warning", "alter config"]
    assert "has replication 1, declared 3" in drift[0].detail and drift[1].detail == "min.insync.replicas=2"
    assert Replication().declare(specs) == specs  # unset: the broker's defaults, no config added
    monkeypatch.setenv("LIVECTX_KAFKA_REPLICATION_FACTOR", "0")
    with pytest.raises(ConfigError, match="replication_factor must be -1"):
        get_settings(reload=True)


def test_every_product_producer_is_the_idempotent_acks_all_one() -> None:
    """Dead letters, embeddings, agents' decisions, the repartitioner...: all go through ``livectx.kafka.producer``
    (acks=all, idempotence), and no call overrides either setting."""
    from livectx import kafka

    assert "Producer(settings.kafka_config(**{**config, **overrides}))" in Path(kafka.__file__).read_text()
    for package in ("livectx", "ingest", "agents", "backtest"):
        for path in (ROOT / package).rglob("*.py"):
            source = path.read_text()
            if path != Path(kafka.__file__):
                assert "Producer(" not in source.replace("SerializingProducer(", ""), path
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.Constant) and node.value in ("acks", "enable.idempotence"):
                    assert path == Path(kafka.__file__), f"{path} sets {node.value}"
