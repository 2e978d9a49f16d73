from pathlib import Path

import pytest

from livectx.errors import ConfigError
from livectx.settings import Settings, feast_redis_connection_string


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("LIVECTX_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def test_defaults_point_at_the_local_stack() -> None:
    settings = Settings()
    assert settings.kafka_bootstrap == "127.0.0.1:19092"
    assert settings.redis_url == "redis://127.0.0.1:16379/0"
    assert settings.data_dir == settings.stack.state_dir / "data"


def test_stack_ports_move_the_derived_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVECTX_STACK_KAFKA_PORT", "29092")
    monkeypatch.setenv("LIVECTX_STACK_REDIS_PORT", "26379")
    settings = Settings()
    assert settings.kafka_bootstrap == "127.0.0.1:29092"
    assert settings.redis_url == "redis://127.0.0.1:26379/0"


def test_environment_beats_config_file_which_beats_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "livectx.toml").write_text(
        '[kafka]\nbootstrap_servers = "file:9092"\nclient_options = { "security.protocol" = "SASL_SSL" }\n'
        "[stack]\nredis_port = 7000\n"
    )
    monkeypatch.setenv("LIVECTX_KAFKA_BOOTSTRAP_SERVERS", "env:9092")
    settings = Settings()
    assert settings.config_file == tmp_path / "livectx.toml"
    assert settings.kafka_bootstrap == "env:9092"
    assert settings.stack.redis_port == 7000
    assert settings.kafka_config()["security.protocol"] == "SASL_SSL"


def test_production_cluster_by_configuration_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVECTX_KAFKA_BOOTSTRAP_SERVERS", "pkc-1.example.cloud:9092")
    monkeypatch.setenv("LIVECTX_KAFKA_CLIENT_OPTIONS", '{"security.protocol": "SASL_SSL", "sasl.username": "k"}')
    monkeypatch.setenv("LIVECTX_KAFKA_SASL_PASSWORD", "s3cret")
    monkeypatch.setenv("LIVECTX_REDIS_URL", "rediss://:pw@redis.internal:6380/0")
    monkeypatch.setenv("LIVECTX_REDIS_CLUSTER", "true")
    settings = Settings()
    config = settings.kafka_config(**{"group.id": "g"})
    assert config["bootstrap.servers"] == "pkc-1.example.cloud:9092"
    assert config["sasl.password"] == "s3cret"
    assert config["group.id"] == "g"
    env = settings.feast_environment()
    # No db for a Cluster: redis-py's RedisCluster (which Feast builds from this string) refuses the argument.
    assert env["LIVECTX_FEAST_REDIS"] == "redis.internal:6380,password=pw,ssl=true"
    assert env["LIVECTX_FEAST_REDIS_TYPE"] == "redis_cluster"
    shown = " ".join(settings.describe().values())
    assert "pw" not in shown.replace("pkc", "") and "s3cret" not in shown and "****" in shown


def test_the_schema_registry_defaults_to_the_stack_and_keeps_credentials_out_of_sight(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from click.testing import CliRunner

    from livectx.cli import cli

    assert Settings().schema_registry_url == "http://127.0.0.1:18081/apis/ccompat/v7"
    assert Settings().schema_registry_config() == {"url": "http://127.0.0.1:18081/apis/ccompat/v7"}
    monkeypatch.setenv("LIVECTX_SCHEMA_REGISTRY_URL", "https://key:p%40ss@psrc-1.example.cloud:8443")
    settings = Settings()
    assert settings.schema_registry_config() == {
        "url": "https://psrc-1.example.cloud:8443",
        "basic.auth.user.info": "key:p@ss",
    }
    monkeypatch.setenv("LIVECTX_SCHEMA_REGISTRY_URL", "https://psrc-1.example.cloud")
    monkeypatch.setenv("LIVECTX_SCHEMA_REGISTRY_USER", "KEY")
    monkeypatch.setenv("LIVECTX_SCHEMA_REGISTRY_PASSWORD", "SECRET")
    settings = Settings()
    assert settings.schema_registry_config()["basic.auth.user.info"] == "KEY:SECRET"
    shown = " ".join(settings.describe().values()) + repr(settings.schema_registry)
    assert "SECRET" not in shown and "https://psrc-1.example.cloud (with credentials)" in shown
    env = CliRunner().invoke(cli, ["env"])
    assert "export LIVECTX_SCHEMA_REGISTRY_URL=https://psrc-1.example.cloud" in env.output
    assert "SECRET" not in env.output


def test_livectx_registry_clients_time_out_instead_of_hanging(monkeypatch: pytest.MonkeyPatch) -> None:
    """A registry that accepts a connection and never answers fails a request after ``timeout_s`` (CI once
    froze 300 s on a read with no timeout)."""
    assert Settings().schema_registry_client_config() == {
        "url": "http://127.0.0.1:18081/apis/ccompat/v7",
        "timeout": 30.0,
    }
    monkeypatch.setenv("LIVECTX_SCHEMA_REGISTRY_TIMEOUT_S", "2.5")
    assert Settings().schema_registry_client_config()["timeout"] == 2.5
    monkeypatch.setenv("LIVECTX_SCHEMA_REGISTRY_TIMEOUT_S", "0")
    with pytest.raises(ConfigError, match="timeout_s"):
        Settings()


def test_invalid_setting_is_one_readable_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVECTX_STACK_KAFKA_PORT", "not-a-port")
    with pytest.raises(ConfigError, match="kafka_port"):
        Settings()


def test_missing_config_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        Settings(tmp_path / "nope.toml")


def test_broken_toml_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[kafka\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Settings(bad)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://127.0.0.1:16379/0", "127.0.0.1:16379,db=0"),
        ("redis://host", "host:6379"),
        ("rediss://user:pw@h:1/3", "h:1,db=3,username=user,password=pw,ssl=true"),
    ],
)
def test_feast_connection_string(url: str, expected: str) -> None:
    assert feast_redis_connection_string(url) == expected


def test_feast_connection_string_rejects_other_schemes() -> None:
    with pytest.raises(ConfigError):
        feast_redis_connection_string("http://x:1")


def test_a_redis_cluster_url_naming_another_database_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVECTX_REDIS_URL", "redis://:pw@redis.internal:6379/2")
    monkeypatch.setenv("LIVECTX_REDIS_CLUSTER", "true")
    with pytest.raises(ConfigError, match="only database 0") as caught:
        Settings().feast_environment()
    assert "pw" not in str(caught.value)


def test_the_stack_s_redis_cluster_makes_the_online_store_a_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVECTX_STACK_REDIS_CLUSTER_NODES", "3")
    settings = Settings()
    assert settings.redis_cluster
    assert settings.feast_environment()["LIVECTX_FEAST_REDIS_TYPE"] == "redis_cluster"
    monkeypatch.setenv("LIVECTX_REDIS_URL", "redis://elsewhere:6379/0")  # a URL of its own wins
    assert not Settings().redis_cluster
