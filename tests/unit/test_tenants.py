"""Tenant declarations, the ACLs and quotas they imply, and how the servers scope a caller (no services)."""

from __future__ import annotations

import json
import re
import types
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from livectx_agents.auth import FORBIDDEN, Forbidden, TenantAuth, auth_required, token_from

from livectx import tenancy
from livectx.kafka import authentication_message
from livectx.quotas import describe_change, java_client_properties, quota_changes
from livectx.repo.tenants import TenantError, collect_tenants, tenant
from livectx.settings import Settings
from livectx.vectors.records import VectorFilter

ACME = tenant("acme", principals=["acme-app"], topic_prefix="acme.", feast_project="shop", producer_byte_rate=1000)
GLOBEX = tenant("globex", principals=["globex-app"], topic_prefix="globex.", feast_project="other")


def test_defaults_follow_the_topic_prefix_and_the_name() -> None:
    assert (ACME.group_prefix, ACME.transactional_id_prefix, ACME.vector_namespace) == ("acme.", "acme.", "acme")
    assert ACME.quota.as_configs() == {"producer_byte_rate": 1000.0}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "Acme"}, "lower case"),
        ({"principals": []}, "at least one principal"),
        ({"principals": ["bad user"]}, "not a valid SCRAM user name"),
        ({"topic_prefix": "acme/"}, "topic_prefix 'acme/'"),
        ({"consumer_byte_rate": 0}, "consumer_byte_rate must be at least 1"),
        ({"request_percentage": 0}, "request_percentage"),
    ],
)
def test_a_bad_declaration_is_one_line_naming_the_tenant(kwargs: dict, message: str) -> None:
    args = {"name": "acme", "principals": ["acme-app"], "topic_prefix": "acme.", "feast_project": "shop", **kwargs}
    with pytest.raises(TenantError, match=message):
        tenant(**args)


def test_overlapping_prefixes_or_shared_principals_are_refused() -> None:
    eu = tenant("acme-eu", principals=["eu-app"], topic_prefix="acme.eu.", feast_project="shop")
    with pytest.raises(TenantError, match=re.escape("topic_prefix 'acme.' and 'acme.eu.' overlap")):
        collect_tenants([types.SimpleNamespace(a=ACME, b=eu)])
    twin = tenant("twin", principals=["acme-app"], topic_prefix="twin.", feast_project="shop")
    with pytest.raises(TenantError, match="principal acme-app is declared by tenants acme and twin"):
        collect_tenants([types.SimpleNamespace(a=ACME, b=twin)])
    assert set(collect_tenants([types.SimpleNamespace(a=ACME, b=GLOBEX, n=3)])) == {"acme", "globex"}


def test_a_tenant_is_granted_its_own_prefixes_only() -> None:
    acls = tenancy.desired_acls(ACME)
    assert {(a.resource, a.name, a.pattern) for a in acls} == {
        ("TOPIC", "acme.", "PREFIXED"), ("GROUP", "acme.", "PREFIXED"), ("TRANSACTIONAL_ID", "acme.", "PREFIXED")
    }  # fmt: skip
    assert {a.operation for a in acls if a.resource == "GROUP"} == {"READ", "DESCRIBE"}
    assert all(a.principal == "User:acme-app" and a.permission == "ALLOW" for a in acls)


def test_quota_changes_set_the_declared_and_remove_the_undeclared() -> None:
    live = {"acme-app": {"producer_byte_rate": 1000.0}, "globex-app": {"consumer_byte_rate": 5.0}}
    assert quota_changes([ACME, GLOBEX], live) == [("globex", "globex-app", {}, {"consumer_byte_rate": 5.0})]
    assert describe_change({"producer_byte_rate": 2e6}, {"producer_byte_rate": 1e6, "request_percentage": 50.0}) == (
        "producer_byte_rate=2000000 (was 1000000), request_percentage removed (was 50)"
    )


def test_the_java_admin_client_gets_the_same_security_as_librdkafka(monkeypatch: pytest.MonkeyPatch) -> None:
    options = {"security.protocol": "SASL_SSL", "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": "ops"}
    monkeypatch.setenv("LIVECTX_KAFKA_CLIENT_OPTIONS", json.dumps({**options, "ssl.ca.location": "/ca.pem"}))
    monkeypatch.setenv("LIVECTX_KAFKA_SASL_PASSWORD", 'p"w')
    props = java_client_properties(Settings())
    assert props["sasl.mechanism"] == "SCRAM-SHA-512" and props["ssl.truststore.location"] == "/ca.pem"
    assert props["sasl.jaas.config"].endswith('required username="ops" password="p\\"w";')


def test_the_secured_stack_configures_every_local_client(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secure = tmp_path / "secure"
    secure.mkdir()
    (secure / "passwords.json").write_text(json.dumps({"kafka_admin": "k-pw", "redis": "r-pw", "postgres": "p-pw"}))
    monkeypatch.setenv("LIVECTX_STACK_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("LIVECTX_STACK_SECURE", "1")
    settings = Settings()
    config = settings.kafka_config()
    assert config["security.protocol"] == "SASL_SSL" and config["sasl.password"] == "k-pw"
    assert config["ssl.ca.location"] == str(secure / "ca.pem")
    assert settings.redis_url.startswith("redis://livectx:r-pw@") and "livectx:p-pw@" in settings.pgvector_dsn
    shown = json.dumps(settings.describe())
    assert "pw" not in shown.replace("passwords", "") and "secured" in shown


def test_credentials_come_from_the_authorization_or_api_key_header() -> None:
    assert token_from({"Authorization": "Bearer lcx_x"}) == "lcx_x"
    assert token_from({"x-api-key": " lcx_y "}) == "lcx_y"
    assert token_from({"authorization": "Basic abc"}) is None and token_from({}) is None


def test_auth_is_off_only_for_loopback_on_the_plain_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not auth_required(Settings(), "127.0.0.1") and auth_required(Settings(), "0.0.0.0")
    monkeypatch.setenv("LIVECTX_STACK_SECURE", "1")
    assert auth_required(Settings(), "127.0.0.1")
    monkeypatch.setenv("LIVECTX_AUTH_MODE", "off")
    assert not auth_required(Settings(), "0.0.0.0")


def test_the_scope_is_the_callers_tenant_whatever_the_request_says() -> None:
    auth = TenantAuth(keys=None, tenants={"acme": ACME, "globex": GLOBEX}, project="shop")  # type: ignore[arg-type]
    assert auth.scope(ACME, None, []) == VectorFilter(tenant="acme")
    assert auth.scope(ACME, VectorFilter(tenant="acme", categories=("x",)), ["u1"]).categories == ("x",)
    for where, entities, who in ((VectorFilter(tenant="globex"), [], ACME), (None, ["u1"], GLOBEX)):
        with pytest.raises(Forbidden) as refused:
            auth.scope(who, where, entities)
        assert str(refused.value) == FORBIDDEN


def _refuse() -> None:
    """A command body the broker refuses (what a producer or admin call raises on an ACL denial)."""
    from confluent_kafka import KafkaError, KafkaException

    raise KafkaException(KafkaError(KafkaError.GROUP_AUTHORIZATION_FAILED))


refused_command = click.Command("refused", callback=_refuse)


def test_an_acl_refusal_is_one_line_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    from livectx import cli as root

    monkeypatch.setitem(root.CORE_COMMANDS, "refused", f"{__name__}:refused_command")
    result = CliRunner().invoke(root.cli, ["refused"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip().splitlines() == [
        "error: Kafka refused this client access to the consumer group (GROUP_AUTHORIZATION_FAILED): a tenant "
        "may use only its own topic, group and transactional-id prefixes (`livectx tenants list`)"
    ]


def test_a_refused_login_names_the_user_and_where_its_password_comes_from(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVECTX_KAFKA_CLIENT_OPTIONS", json.dumps({"sasl.username": "acme-app"}))
    monkeypatch.setenv("LIVECTX_KAFKA_SASL_PASSWORD", "s3cret")
    message = authentication_message(Settings())
    assert "user 'acme-app'" in message and "LIVECTX_KAFKA_SASL_PASSWORD" in message and "s3cret" not in message
