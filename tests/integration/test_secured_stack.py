"""The secured stack end to end: a real SASL_SSL broker with ACLs, Redis with ACL users, Postgres with SCRAM.

The module starts its own secured Kafka, Redis and Postgres through livectx's stack code (own state dir,
free ports), declares two tenants in a scaffolded repo, applies them with ``livectx tenants apply``, and
checks isolation as each tenant's principal sees it. Every CLI output and error text of the module is
kept, and the last test scans them, the services' logs and ``livectx config`` for any secret.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import psycopg
import pytest
import redis
import uvicorn
from click.testing import CliRunner
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import NewTopic
from livectx_agents.auth import FORBIDDEN, TenantAuth
from livectx_agents.context import AsyncContextClient, ContextClient, ContextConfig
from livectx_agents.server import create_app
from livectx_agents.tools.context_tools import ContextTools
from livectx_agents.tools.mcp_server import build_server, require_key

from livectx import tenancy
from livectx.auth import ApiKeyStore
from livectx.cli import cli
from livectx.errors import LivectxError
from livectx.kafka import admin_client, denial_message, require_reachable
from livectx.quotas import QuotaTool
from livectx.redis_client import redis_client
from livectx.repo.loader import load_repo
from livectx.repo.scaffold import scaffold
from livectx.settings import Settings
from livectx.stack.manager import Stack
from livectx.stack.process import wait_until
from livectx.vectors.pgvector_store import PgVectorStore
from livectx.vectors.records import VectorRecord

SERVICES = ["kafka", "redis", "postgres"]
TENANTS = """
from livectx.repo.tenants import tenant

acme = tenant("acme", principals=["acme-app"], topic_prefix="acme.", feast_project="desk",
              producer_byte_rate=1048576, consumer_byte_rate=2097152, request_percentage=50)
globex = tenant("globex", principals=["globex-app"], topic_prefix="globex.", feast_project="elsewhere")
"""
OUTPUTS: list[str] = []  # every CLI output and error message of this module, scanned for secrets at the end
SECRETS: set[str] = set()  # every password and key the module saw


def _free_ports(n: int) -> list[int]:
    """``n`` distinct free ports: every socket stays bound until all are chosen (one at a time, the system
    may hand out a port just released again, and two services then clash)."""
    with contextlib.ExitStack() as sockets:
        ports = []
        for _ in range(n):
            s = sockets.enter_context(socket.socket())
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
        return ports


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The secured stack's environment (state dir, ports, LIVECTX_STACK_SECURE, the tenants' repo)."""
    root = tmp_path_factory.mktemp("secured")
    repo = root / "repo"
    scaffold(repo, "desk")
    (repo / "tenants.py").write_text(TENANTS)
    kafka, controller, redis, postgres = _free_ports(4)
    env = {
        "LIVECTX_STACK_STATE_DIR": str(root / "stack"),
        "LIVECTX_STACK_KAFKA_PORT": str(kafka),
        "LIVECTX_STACK_KAFKA_CONTROLLER_PORT": str(controller),
        "LIVECTX_STACK_REDIS_PORT": str(redis),
        "LIVECTX_STACK_POSTGRES_PORT": str(postgres),
        "LIVECTX_STACK_SECURE": "1",
        "LIVECTX_FEATURE_REPO": str(repo),
        "LIVECTX_VECTOR_INDEX": "secured_memory",
    }
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        for name in ("LIVECTX_KAFKA_BOOTSTRAP_SERVERS", "LIVECTX_REDIS_URL", "LIVECTX_VECTOR_PGVECTOR_DSN"):
            mp.delenv(name, raising=False)
        stack = Stack(Settings())
        try:
            stack.up(SERVICES)
            passwords = json.loads((root / "stack" / "secure" / "passwords.json").read_text())
            SECRETS.update(passwords.values())
            yield env
        finally:
            stack.down(SERVICES)


def _cli(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    output = result.output  # stdout and stderr, as a terminal shows them
    OUTPUTS.append(output)
    return result.exit_code, output


@pytest.fixture(scope="module")
def applied(secured: dict[str, str]) -> dict[str, str]:
    """The tenants applied, and each principal's password (read from the secrets dir)."""
    code, output = _cli(secured, "tenants", "apply")
    assert code == 0, output
    secrets_dir = Path(secured["LIVECTX_STACK_STATE_DIR"]) / "secure" / "principals"
    passwords = {p: (secrets_dir / f"{p}.password").read_text().strip() for p in ("acme-app", "globex-app")}
    SECRETS.update(passwords.values())
    admin = admin_client(Settings())
    for future in admin.create_topics([NewTopic(t, 1, 1) for t in ("acme.events", "globex.events")]).values():
        future.result()
    return passwords


def _tenant_env(principal: str, password: str) -> dict[str, str]:
    """A tenant client's Kafka settings, the way production sets them: client options + SASL password."""
    options = {
        "security.protocol": "SASL_SSL", "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": principal,
        "ssl.ca.location": str(Settings().stack.state_dir / "secure" / "ca.pem"),
    }  # fmt: skip
    return {"LIVECTX_KAFKA_CLIENT_OPTIONS": json.dumps(options), "LIVECTX_KAFKA_SASL_PASSWORD": password}


def _as(principal: str, password: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name, value in _tenant_env(principal, password).items():
        monkeypatch.setenv(name, value)
    return Settings()


def test_tenants_apply_is_idempotent_and_repairs_drift(secured: dict[str, str], applied: dict[str, str]) -> None:
    settings = Settings()
    admin = admin_client(settings)
    declared = list(load_repo(secured["LIVECTX_FEATURE_REPO"], reload=True).tenants.values())
    secrets_dir = settings.stack.state_dir / "secure" / "principals"
    assert {c.action for c in tenancy.plan(admin, declared, secrets_dir)} == {"unchanged"}
    quotas = QuotaTool(settings).describe()
    assert quotas["acme-app"] == {
        "producer_byte_rate": 1048576.0, "consumer_byte_rate": 2097152.0, "request_percentage": 50.0
    }  # fmt: skip
    assert "globex-app" not in quotas

    removed = tenancy.Acl("User:acme-app", "GROUP", "acme.", "PREFIXED", "READ")
    stray = tenancy.Acl("User:acme-app", "TOPIC", "globex.events", "LITERAL", "READ")
    tenancy._delete_acls(admin, [removed])
    tenancy._create_acls(admin, [stray])
    drift = {(c.action, c.detail) for c in tenancy.plan(admin, declared, secrets_dir) if c.action != "unchanged"}
    assert drift == {("create", f"User:acme-app {removed}"), ("delete", f"User:acme-app {stray}")}

    code, output = _cli(secured, "tenants", "apply")
    assert code == 0, output
    assert {c.action for c in tenancy.plan(admin, declared, secrets_dir)} == {"unchanged"}
    assert removed in tenancy.live_acls(admin, ["acme-app"]) and stray not in tenancy.live_acls(admin, ["acme-app"])
    code, listed = _cli(secured, "tenants", "list", "--json")
    assert code == 0, listed
    live = {row["principal"]: row for row in json.loads(listed)}
    assert live["acme-app"]["scram_user"] and len(live["acme-app"]["acls"]) == live["acme-app"]["acls_declared"] == 8
    assert live["acme-app"]["quotas"]["request_percentage"] == 50.0 and live["globex-app"]["quotas"] == {}


def test_a_tenant_is_denied_the_others_topics_groups_and_transactional_ids(
    secured: dict[str, str], applied: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _as("acme-app", applied["acme-app"], monkeypatch)
    require_reachable(settings)  # its own credentials work

    producer = Producer(settings.kafka_config(**{"log_level": 0}))
    results: dict[str, object] = {}
    for topic in ("acme.events", "globex.events"):
        producer.produce(topic, b"v", on_delivery=lambda err, _msg, t=topic: results.__setitem__(t, err))
    producer.flush(30)
    assert results["acme.events"] is None
    denied = denial_message(results["globex.events"], settings, "globex.events")
    assert denied is not None and "'acme-app'" in denied and "'globex.events'" in denied and "\n" not in denied
    OUTPUTS.append(denied)
    metadata = producer.list_topics("globex.events", timeout=10)
    assert metadata.topics["globex.events"].error.name() == "TOPIC_AUTHORIZATION_FAILED"

    def commit(group: str) -> None:
        consumer = Consumer(settings.kafka_config(**{"group.id": group, "log_level": 0}))
        try:
            consumer.commit(offsets=[TopicPartition("acme.events", 0, 1)], asynchronous=False)
        finally:
            consumer.close()

    commit("acme.readers")
    admin = admin_client(settings)
    asked = [ConsumerGroupTopicPartitions(g) for g in ("acme.readers", "globex.readers")]
    offsets = {g: admin.list_consumer_group_offsets([q], request_timeout=15)[g] for g, q in zip(
        ("acme.readers", "globex.readers"), asked, strict=True)}  # fmt: skip
    assert [tp.offset for tp in offsets["acme.readers"].result(timeout=30).topic_partitions] == [1]
    with pytest.raises(KafkaException) as group_denied:
        offsets["globex.readers"].result(timeout=30)
    assert group_denied.value.args[0].name() == "GROUP_AUTHORIZATION_FAILED"
    OUTPUTS.append(str(denial_message(group_denied.value, settings, "globex.readers")))

    def init(transactional_id: str) -> None:
        Producer(settings.kafka_config(**{"transactional.id": transactional_id, "log_level": 0})).init_transactions(30)

    init("acme.agent-1")
    with pytest.raises(KafkaException) as txn_denied:
        init("globex.agent-1")
    assert txn_denied.value.args[0].name() == "TRANSACTIONAL_ID_AUTHORIZATION_FAILED"

    # Through the CLI: the scaffold's own topic (desk.messages) is outside acme's prefix: one readable line.
    code, output = _cli({**secured, **_tenant_env("acme-app", applied["acme-app"])}, "topics", "apply")
    assert code == 1 and len(output.strip().splitlines()) == 1, output
    assert "Traceback" not in output and "authoriz" in output.lower()


def test_wrong_passwords_give_one_clear_line(
    secured: dict[str, str], applied: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "not-the-password"
    settings = _as("acme-app", wrong, monkeypatch)
    with pytest.raises(LivectxError) as refused:
        require_reachable(settings, timeout_s=10)
    message = str(refused.value)
    OUTPUTS.append(message)
    assert "refused the credentials of user 'acme-app'" in message and wrong not in message

    code, output = _cli({**secured, **_tenant_env("acme-app", wrong)}, "topics", "apply", "--dry-run")
    assert code == 1 and "refused the credentials" in output and len(output.strip().splitlines()) == 1

    plain = Settings()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host=plain.stack.host, port=plain.stack.redis_port).ping()  # the default user is off
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host=plain.stack.host, port=plain.stack.redis_port, username="livectx", password=wrong).ping()
    assert redis_client(plain).ping()
    address = f"{plain.stack.host}:{plain.stack.postgres_port}"
    for dsn in (f"postgresql://livectx@{address}/livectx", f"postgresql://livectx:{wrong}@{address}/livectx"):
        with pytest.raises(psycopg.OperationalError) as pg_refused:
            psycopg.connect(dsn, connect_timeout=5)
        OUTPUTS.append(str(pg_refused.value))
    with psycopg.connect(plain.pgvector_dsn, connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


@pytest.fixture(scope="module")
def items(secured: dict[str, str]) -> Iterator[tuple[PgVectorStore, np.ndarray]]:
    """The same three vectors stored for each tenant, in the secured Postgres."""
    store = PgVectorStore.from_settings(Settings())
    store.ensure_index("test-model", 8)
    vectors = np.random.default_rng(7).normal(size=(3, 8)).astype(np.float32)
    store.upsert([
        VectorRecord(
            id=f"item:{tenant}:{i}", vector=v, text=f"{tenant} item {i}", source="notes", tenant=tenant,
            category=None, event_ms=1_700_000_000_000 + i, topic=f"{tenant}.notes", partition=0, offset=i,
        )
        for tenant in ("acme", "globex") for i, v in enumerate(vectors)
    ])  # fmt: skip
    yield store, vectors
    store.drop()
    store.close()


def _context_client(store: PgVectorStore, query: np.ndarray) -> ContextClient:
    return ContextClient(
        lambda entities, _service: {e: [] for e in entities},
        lambda v, k, where: store.search(v, k, where),
        lambda _text: query,
        None,
        ContextConfig(budget_ms=5000, features_timeout_ms=2000, vectors_timeout_ms=4000),
        services={"svc": []},
        memory_sources={},
    )


def _serve(app: object) -> tuple[uvicorn.Server, threading.Thread, int]:
    (port,) = _free_ports(1)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert wait_until(lambda: server.started, 30, poll_s=0.02)
    return server, thread, port


def test_context_server_authenticates_and_scopes_to_the_key_tenant(secured: dict[str, str], items) -> None:  # type: ignore[no-untyped-def]
    settings = Settings()
    store, vectors = items
    keys = ApiKeyStore(redis_client(settings))
    acme_key, globex_key = keys.create("acme"), keys.create("globex")
    SECRETS.update({acme_key, globex_key})
    repo = load_repo(secured["LIVECTX_FEATURE_REPO"])
    client = _context_client(store, vectors[0])
    app = create_app(AsyncContextClient(client), auth=TenantAuth(keys, repo.tenants, repo.project))
    server, thread, port = _serve(app)
    query = {"query_vector": vectors[0].tolist(), "top_k": 6}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            anonymous = http.post("/v1/context", json=query)
            assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
            forged = http.post("/v1/context", json=query, headers={"Authorization": f"Bearer {acme_key[:-2]}xx"})
            assert forged.status_code == 401
            as_acme = {"Authorization": f"Bearer {acme_key}"}
            own = http.post("/v1/context", json=query, headers=as_acme)
            assert own.status_code == 200, own.text
            assert {hit["id"] for hit in own.json()["similar"]} == {f"item:acme:{i}" for i in range(3)}
            cross = http.post("/v1/context", json={**query, "filters": {"tenant": "globex"}}, headers=as_acme)
            unknown = http.post("/v1/context", json={**query, "filters": {"tenant": "nobody"}}, headers=as_acme)
            assert cross.status_code == unknown.status_code == 403
            assert cross.json() == unknown.json() == {"error": FORBIDDEN}  # says nothing about globex
            as_globex = {"X-API-Key": globex_key}
            theirs = http.post("/v1/context", json=query, headers=as_globex)
            assert {hit["id"] for hit in theirs.json()["similar"]} == {f"item:globex:{i}" for i in range(3)}
            features = http.post("/v1/context", json={"entities": ["c1"], "feature_service": "svc"}, headers=as_globex)
            assert features.status_code == 403  # globex's Feast project is not the one served here
            assert http.get("/healthz").status_code == 200  # probes carry no tenant
            keys.revoke(acme_key.split("_")[1])
            assert http.post("/v1/context", json=query, headers=as_acme).status_code == 401
            OUTPUTS.extend(r.text for r in (anonymous, forged, own, cross, theirs, features))
    finally:
        server.should_exit = True
        thread.join(10)


def test_mcp_over_http_authenticates_each_request_and_scopes_each_tool_call(secured: dict[str, str], items) -> None:  # type: ignore[no-untyped-def]
    """Raw JSON-RPC over streamable HTTP (the SDK's client sends no custom headers): one session, per-request keys."""
    settings = Settings()
    store, vectors = items
    keys = ApiKeyStore(redis_client(settings))
    acme_key, globex_key = keys.create("acme"), keys.create("globex")
    SECRETS.update({acme_key, globex_key})
    repo = load_repo(secured["LIVECTX_FEATURE_REPO"])
    auth = TenantAuth(keys, repo.tenants, repo.project)
    mcp = build_server(ContextTools(_context_client(store, vectors[0])), auth)
    server, thread, port = _serve(require_key(mcp.streamable_http_app(json_response=True), auth))
    url = f"http://127.0.0.1:{port}/mcp"
    plain = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    hello = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}
    try:
        with httpx.Client(timeout=30) as http:
            assert http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello},
                             headers=plain).status_code == 401  # fmt: skip
            as_acme = {**plain, "Authorization": f"Bearer {acme_key}"}
            init = http.post(
                url, json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello}, headers=as_acme
            )
            assert init.status_code == 200, init.text
            session = {"mcp-session-id": init.headers["mcp-session-id"]}
            http.post(
                url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers={**as_acme, **session}
            )

            def search(headers: dict[str, str], **arguments: object) -> dict:  # type: ignore[type-arg]
                call = {"name": "search_memory", "arguments": {"query": "x", "top_k": 6, **arguments}}
                answer = http.post(url, json={"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call},
                                   headers={**headers, **session})  # fmt: skip
                OUTPUTS.append(answer.text)
                return answer.json()["result"]

            own = search(as_acme)
            assert {h["id"] for h in json.loads(own["content"][0]["text"])["similar"]} == {
                f"item:acme:{i}" for i in range(3)
            }
            cross = search(as_acme, tenant="globex")
            assert cross["isError"] and FORBIDDEN in cross["content"][0]["text"]
            as_globex = {**plain, "Authorization": f"Bearer {globex_key}"}  # the same session, another key
            theirs = json.loads(search(as_globex)["content"][0]["text"])["similar"]
            assert {h["id"] for h in theirs} == {f"item:globex:{i}" for i in range(3)}
    finally:
        server.should_exit = True
        thread.join(10)


def test_the_platform_path_runs_on_the_secured_stack(secured: dict[str, str]) -> None:
    """Topics, Feast (its Redis with the ACL user), the producer, the feature engine (Kafka SASL_SSL and
    Redis transactions) and Feast's online read: every client configured from the settings alone."""
    for args in (
        ("topics", "apply"),
        ("feast", "apply"),
        ("produce", "--generator", "messages", "--count", "200"),
        ("ingest", "run", "features", "--until-caught-up"),
    ):
        code, output = _cli(secured, *args)
        assert code == 0, output
    code, output = _cli(secured, "features", "get", "c00001", "--service", "customer_features", "--json")
    assert code == 0, output
    assert json.loads(output[output.index("{") :])["messages_1h"][0] >= 1


def test_no_secret_in_any_log_or_output(secured: dict[str, str]) -> None:
    code, config = _cli(secured, "config")
    assert code == 0 and "secured" in config
    logs = Path(secured["LIVECTX_STACK_STATE_DIR"]) / "logs"
    texts = {f"log {p.name}": p.read_text(errors="replace") for p in logs.glob("*.log")}
    texts.update({f"output {i}": text for i, text in enumerate(OUTPUTS)})
    assert len(SECRETS) >= 5 and texts  # the stack's three passwords and the two principals', at least
    leaks = [(where, secret[:4]) for where, text in texts.items() for secret in SECRETS if secret in text]
    assert leaks == []
