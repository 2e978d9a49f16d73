"""`livectx stack up/status/down` on an isolated second stack (own ports and state dir)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from livectx.errors import ServiceError
from livectx.settings import Settings
from livectx.stack.manager import Stack
from livectx.stack.process import port_is_open, wait_until


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Settings:
    monkeypatch.setenv("LIVECTX_STACK_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("LIVECTX_STACK_CACHE_DIR", str(settings.stack.cache_dir))  # reuse the fetched jars
    monkeypatch.setenv("LIVECTX_STACK_KAFKA_PORT", "19192")
    monkeypatch.setenv("LIVECTX_STACK_KAFKA_CONTROLLER_PORT", "19193")
    monkeypatch.setenv("LIVECTX_STACK_REDIS_PORT", "16479")
    monkeypatch.setenv("LIVECTX_STACK_POSTGRES_PORT", "15532")
    monkeypatch.setenv("LIVECTX_STACK_SCHEMA_REGISTRY_PORT", "18181")
    monkeypatch.setenv("LIVECTX_STACK_SCHEMA_REGISTRY_MANAGEMENT_PORT", "18182")
    for port in (19192, 19193, 16479, 15532, 18181, 18182):
        assert not port_is_open("127.0.0.1", port), f"port {port} busy before the test"
    return Settings()


SERVICES = ("kafka", "redis", "postgres", "schema-registry")
ALL_HEALTHY = dict.fromkeys(SERVICES, "healthy")
_SCHEMA_JSON = '{"type": "record", "name": "Lifecycle", "fields": [{"name": "id", "type": "string"}]}'


def _all(action: str) -> list[tuple[str, str]]:
    return [(name, action) for name in SERVICES]


def _registry(settings: Settings):  # type: ignore[no-untyped-def]
    from confluent_kafka.schema_registry import SchemaRegistryClient

    return SchemaRegistryClient(settings.schema_registry_config())


def _health(stack: Stack) -> dict[str, str]:
    return {row.name: row.health for row in stack.status()}


def test_up_twice_status_kill_restart_down_up(isolated: Settings) -> None:
    stack = Stack(isolated)
    try:
        assert stack.up() == _all("started")
        assert stack.up() == _all("already running")
        assert _health(stack) == ALL_HEALTHY
        # The registry answers on its Confluent-compatible API; what it stores must survive down/up.
        from confluent_kafka.schema_registry import Schema

        registered = _registry(isolated).register_schema("lifecycle-value", Schema(_SCHEMA_JSON, "AVRO"))
        # The stack's Postgres serves the pgvector extension in the livectx database.
        import psycopg

        with psycopg.connect(isolated.pgvector_dsn) as conn:
            assert conn.execute("SELECT extname FROM pg_extension WHERE extname = 'vector'").fetchone() == ("vector",)

        # Redis killed by hand: reported unhealthy (it died), and `up` brings it back.
        redis_pid = stack.service("redis").process.pid()
        assert redis_pid is not None
        os.kill(redis_pid, signal.SIGKILL)
        assert wait_until(lambda: _health(stack)["redis"] == "unhealthy", 10)
        assert "died" in next(r.detail for r in stack.status() if r.name == "redis")

        # Kafka frozen (alive but not answering): unhealthy, then healthy again once it resumes.
        kafka_pid = stack.service("kafka").process.pid()
        assert kafka_pid is not None
        os.kill(kafka_pid, signal.SIGSTOP)
        try:
            assert _health(stack)["kafka"] == "unhealthy"
        finally:
            os.kill(kafka_pid, signal.SIGCONT)
        assert wait_until(lambda: _health(stack)["kafka"] == "healthy", 30, poll_s=0.2)

        assert stack.up() == [
            ("kafka", "already running"),
            ("redis", "started"),
            ("postgres", "already running"),
            ("schema-registry", "already running"),
        ]
        assert _health(stack) == ALL_HEALTHY

        assert stack.down() == list(reversed(_all("stopped")))
        assert _health(stack) == dict.fromkeys(SERVICES, "stopped")
        assert not any(port_is_open("127.0.0.1", port) for port in (19192, 16479, 15532, 18181, 18182))
        assert stack.down() == list(reversed(_all("not running")))

        # Up again on the already formatted log dir, initialised Postgres data directory and registry file.
        assert stack.up() == _all("started")
        assert _health(stack) == ALL_HEALTHY
        after = _registry(isolated).get_latest_version("lifecycle-value")
        assert (after.schema_id, after.version) == (registered, 1)
    finally:
        stack.down()


def test_port_taken_by_a_stranger_is_a_clear_error(isolated: Settings) -> None:
    import socket

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 16479))
        squatter.listen()
        with pytest.raises(ServiceError, match=r"16479 .* already used by another process.*LIVECTX_STACK_REDIS_PORT"):
            Stack(isolated).up(["redis"])
