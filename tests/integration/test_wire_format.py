"""The Confluent wire format end to end, against the real broker and Apicurio Registry.

Each test scaffolds a repo of its own with ``livectx init`` (unique project, so unique topics and
subjects), declares its source ``wire="confluent"``, applies topics and schemas with the CLI, produces with
``livectx produce``, runs the feature engine in this process and compares the online rows with the batch
recomputation (:func:`livectx.features.recompute.recompute_online`), read straight from Redis.

- interop: plain confluent-kafka (``AvroDeserializer``/``AvroSerializer`` over ``SchemaRegistryClient``,
  nothing from livectx) reads what livectx writes, and livectx reads what it writes;
- an unregistered schema id, and undecodable bytes behind a real one, go to the dead-letter topic with
  the reason while the entity's features keep updating (a JSON source: framed records on the columnar path);
- a producer whose declared schema is not registered refuses in one line, before producing anything;
- a topic of header-tagged JSON moves to the registry's format by switching the producers alone: one
  worker run reads both;
- after a compatible change applied with ``livectx schemas apply``, records of both versions decode in
  one run;
- the transactional loop (agents, the repartitioner) aborts, rewinds and retries a batch the registry
  could not decode;
- the registry stopped mid-run (a private instance on ports of its own, so the shared one is untouched):
  the worker pauses, resumes when it is back, and nothing is lost, dead-lettered or counted twice.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from livectx import dead_letter, serde, wire
from livectx.cli import cli
from livectx.events import Event
from livectx.features.recompute import recompute_online
from livectx.produce import generated_events
from livectx.repo.loader import Repo, load_repo
from livectx.settings import Settings, get_settings
from tests.integration.kafka_helpers import create_topic, read_all

START = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
LATER = START + timedelta(minutes=10)  # a second batch of events, after the first one's
WIRE_LINE = '    key="customer_id",\n'
JSON_SOURCES = """
from datetime import timedelta

from feast.data_format import JsonFormat

from livectx.repo.declare import stream_source

messages = stream_source(
    name="messages",
    topic="{project}.messages",
    schema=JsonFormat(
        "message_id STRING, customer_id STRING, channel STRING, amount DOUBLE, text STRING, ts TIMESTAMP"
    ),
    timestamp_field="ts",
    key="customer_id",
    grace=timedelta(seconds=30),
    wire="{wire}",
)
"""
REGION = '        {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},\n'


def _run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@dataclass
class Wired:
    folder: Path
    project: str
    dlq: str

    @property
    def repo(self) -> Repo:
        return load_repo(self.folder)

    @property
    def topic(self) -> str:
        return f"{self.project}.messages"

    def reload(self) -> Repo:
        return load_repo(self.folder, reload=True)

    def produce(self, count: int, start: datetime, seed: int) -> list[Event]:
        _run(
            "produce",
            "--generator",
            "messages",
            "--count",
            str(count),
            "--start",
            start.isoformat(),
            "--seed",
            str(seed),
        )
        return events_of(self.repo, count, start, seed)


def events_of(repo: Repo, count: int, start: datetime, seed: int) -> list[Event]:
    return [e for _t, e in itertools.islice(generated_events(repo, "messages", seed, start), count)]


@pytest.fixture
def make_repo(stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """``make_repo(json=False)``: a scaffolded repo whose source is written through the registry the
    settings name, its topics and schemas applied."""

    def make(json_source: bool = False, apply_schemas: bool = True, wire_format: str = "confluent") -> Wired:
        unique = uuid.uuid4().hex[:8]
        project = f"wire_{unique}"
        folder = tmp_path / project
        _run("init", str(folder), "--project", project)
        sources = folder / "sources.py"
        if json_source:
            sources.write_text(JSON_SOURCES.format(project=project, wire=wire_format))
        else:
            assert WIRE_LINE in sources.read_text()
            sources.write_text(sources.read_text().replace(WIRE_LINE, WIRE_LINE + '    wire="confluent",\n'))
        monkeypatch.setenv("LIVECTX_FEATURE_REPO", str(folder))
        settings = get_settings(reload=True)
        _run("topics", "apply")
        if apply_schemas:
            assert "registered" in _run("schemas", "apply")
        return Wired(folder, project, create_topic(settings, f"test.{unique}.dlq"))

    yield make
    monkeypatch.undo()
    get_settings(reload=True)
    wire.reset_default_cache()


def run_worker(wired: Wired, group: str, **options: Any) -> Any:
    from livectx_ingest.streaming.worker import run_features_worker

    stats, _late = run_features_worker(
        get_settings(reload=True),
        consumer_group=group,
        dead_letter_topic=wired.dlq,
        until_caught_up=True,
        write_offline=False,
        metrics_interval_s=3600,
        **options,
    )
    return stats


def assert_online_equals_recomputation(repo: Repo, events: list[Event]) -> int:
    from livectx.features.online_reader import OnlineFeatureReader

    reader = OnlineFeatureReader.from_settings(get_settings())
    checked = 0
    for group in repo.groups:
        expected = recompute_online(group, events)
        customers = sorted(expected)
        online = reader.read(customers, [f"{group.name}:{f.name}" for f in group.features])
        for i, customer in enumerate(customers):
            for feature in group.features:
                assert online[feature.name][i] == pytest.approx(expected[customer].values[feature.name], rel=1e-12), (
                    group.name,
                    customer,
                    feature.name,
                )
                checked += 1
    assert checked > 0
    return checked


def no_dead_letters(settings: Settings, wired: Wired) -> None:
    letters = read_all(settings, wired.dlq, expected=1, timeout_s=3.0)
    assert not letters, [dict(m.headers())[dead_letter.REASON] for m in letters]


def test_plain_confluent_kafka_clients_read_what_livectx_writes_and_write_what_it_reads(make_repo) -> None:  # type: ignore[no-untyped-def]
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    wired = make_repo()
    settings = get_settings()
    ours = wired.produce(200, START, seed=42)

    # A consumer written with confluent-kafka alone: only the addresses come from the settings.
    registry = SchemaRegistryClient({"url": settings.schema_registry_url})
    deserialize = AvroDeserializer(registry)
    plain = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"plain-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
        }
    )
    plain.subscribe([wired.topic])
    read: list[dict[str, Any]] = []
    deadline = time.monotonic() + 60
    try:
        while len(read) < len(ours) and time.monotonic() < deadline:
            for m in plain.consume(500, 0.5):
                if m.error() is None:
                    record = deserialize(m.value(), SerializationContext(m.topic(), MessageField.VALUE))
                    read.append(record)
    finally:
        plain.close()
    assert sorted(map(_canonical, read)) == sorted(_canonical(e.model_dump(by_alias=True)) for e in ours)

    # A producer written with confluent-kafka alone: the latest registered schema, no auto-registration.
    theirs = events_of(wired.repo, 200, LATER, seed=7)
    serialize = AvroSerializer(registry, None, conf={"auto.register.schemas": False, "use.latest.version": True})
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    for event in theirs:
        value = serialize(event.model_dump(by_alias=True), SerializationContext(wired.topic, MessageField.VALUE))
        producer.produce(wired.topic, key=event.key.encode(), value=value)
    assert producer.flush(30) == 0

    stats = run_worker(wired, f"wire-{wired.project}")
    assert stats.events == 400
    no_dead_letters(settings, wired)
    assert_online_equals_recomputation(wired.repo, [*ours, *theirs])


def test_a_producer_refuses_to_write_a_schema_that_is_not_registered(make_repo) -> None:  # type: ignore[no-untyped-def]
    wired = make_repo(apply_schemas=False)
    args = ["produce", "--generator", "messages", "--count", "10", "--start", START.isoformat()]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "not registered under" in lines[0] and "run `livectx schemas apply`" in lines[0]
    assert read_all(get_settings(), wired.topic, expected=1, timeout_s=2.0) == []  # nothing produced
    _run("schemas", "apply")
    assert wired.produce(10, START, seed=42)  # and once applied, it does


def test_an_unregistered_schema_id_is_dead_lettered_and_the_features_keep_updating(make_repo) -> None:  # type: ignore[no-untyped-def]
    from livectx.kafka import producer as make_producer

    wired = make_repo(json_source=True)
    settings = get_settings()
    first = wired.produce(600, START, seed=42)
    registered = wire.split(read_all(settings, wired.topic, expected=1)[0].value())[0]
    victim = first[-1]
    payload = victim.model_dump_json().encode()
    poison = [wire.frame(987_654_321, payload), wire.frame(registered, b'{"message_id": 12')]
    producer = make_producer(settings)
    for value in poison:
        producer.produce(wired.topic, key=victim.key.encode(), value=value)
    assert producer.flush(30) == 0
    second = wired.produce(600, LATER, seed=7)

    stats = run_worker(wired, f"wire-{wired.project}", columnar_min=50)
    assert stats.events == 1200 and stats.events_columnar > 0  # framed JSON on the columnar path
    letters = read_all(settings, wired.dlq, expected=2)
    reasons = sorted(dict(m.headers())[dead_letter.REASON].decode() for m in letters)
    assert len(reasons) == 2 and reasons[0].startswith("not JSON: "), reasons
    assert reasons[1] == "unknown schema id 987654321: the schema registry has no schema with this id"
    assert {dict(m.headers())[dead_letter.SOURCE_TOPIC] for m in letters} == {wired.topic.encode()}
    events = [*first, *second]
    assert any(e.key == victim.key for e in second)  # the victim's features went on after the poison
    assert_online_equals_recomputation(wired.repo, events)


def test_a_topic_of_header_tagged_json_moves_to_the_registry_format_without_downtime(make_repo) -> None:  # type: ignore[no-untyped-def]
    wired = make_repo(json_source=True, wire_format="plain")
    settings = get_settings()
    before = wired.produce(600, START, seed=42)  # today's records: JSON with a livectx-schema header
    sources = wired.folder / "sources.py"
    sources.write_text(sources.read_text().replace('wire="plain"', 'wire="confluent"'))
    wired.reload()
    after = wired.produce(600, LATER, seed=7)  # the producers switched; the workers were not touched
    values = [m.value() for m in read_all(settings, wired.topic, 1200)]
    assert {v[:1] for v in values} == {b"{", b"\0"}  # the topic holds both formats

    stats = run_worker(wired, f"wire-{wired.project}", columnar_min=50)
    assert stats.events == 1200 and stats.events_columnar > 0
    no_dead_letters(settings, wired)
    assert_online_equals_recomputation(wired.repo, [*before, *after])


def test_old_and_new_records_decode_in_one_run_after_a_compatible_change(make_repo) -> None:  # type: ignore[no-untyped-def]
    wired = make_repo()
    settings = get_settings()
    old_repo = wired.repo
    old = wired.produce(300, START, seed=42)
    sources = wired.folder / "sources.py"
    sources.write_text(
        sources.read_text().replace(REGION, REGION + '        {"name": "region", "type": "string", "default": "eu"},\n')
    )
    new_repo = wired.reload()
    assert "region" in new_repo.model("messages").model_fields
    assert "new version" in _run("schemas", "plan")
    _run("schemas", "check")
    assert "version 2" in _run("schemas", "apply")
    new = wired.produce(300, LATER, seed=7)
    assert {e.region for e in new} != {"eu"}  # type: ignore[attr-defined]

    # One run of one worker over records of both writers, read with the declared (new) schema.
    stats = run_worker(wired, f"wire-{wired.project}")
    assert stats.events == 600
    no_dead_letters(settings, wired)
    cache = wire.SchemaCache.from_settings(settings)
    from livectx import serde

    values = [m.value() for m in read_all(settings, wired.topic, 600)]
    assert len({wire.split(v)[0] for v in values}) == 2  # two writer schemas on the topic
    decoded = [serde.decode(new_repo.model("messages"), v, cache) for v in values]
    # The old records read with the new field's default, the new ones with theirs (as written).
    expected = [{**e.model_dump(), "region": "eu"} for e in old] + [e.model_dump() for e in new]
    assert sorted(map(_canonical, (e.model_dump() for e in decoded))) == sorted(map(_canonical, expected))
    assert len(old_repo.groups) == len(new_repo.groups)
    assert_online_equals_recomputation(new_repo, [*old, *new])


def _canonical(record: dict[str, Any]) -> str:
    import json

    return json.dumps(record, sort_keys=True, default=str)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def private_registry(stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """An Apicurio instance of this test's own (state dir and ports), which it may stop and start again;
    the settings name it (``LIVECTX_SCHEMA_REGISTRY_URL``)."""
    from livectx.stack.registry import SchemaRegistry

    port, management = _free_port(), _free_port()
    with monkeypatch.context() as env:
        env.setenv("LIVECTX_STACK_STATE_DIR", str(tmp_path / "registry-state"))
        env.setenv("LIVECTX_STACK_SCHEMA_REGISTRY_PORT", str(port))
        env.setenv("LIVECTX_STACK_SCHEMA_REGISTRY_MANAGEMENT_PORT", str(management))
        registry = SchemaRegistry(Settings())
    registry.start()
    try:
        registry.wait_ready(180)
        monkeypatch.setenv("LIVECTX_SCHEMA_REGISTRY_URL", f"http://127.0.0.1:{port}/apis/ccompat/v7")
        yield registry
    finally:
        registry.process.stop()


def test_the_workers_pause_while_the_registry_is_down_and_lose_nothing(  # type: ignore[no-untyped-def]
    private_registry, make_repo, embedder, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The feature engine and the embedding worker through one outage: both pause, neither dead-letters,
    both resume; every record is applied once and every message is in the vector index once."""
    import logging

    from livectx_ingest.embeddings.worker import EmbeddingWorker
    from livectx_ingest.streaming.worker import run_features_worker

    from livectx.kafka import producer as make_producer
    from livectx.offsets import GroupCommits, end_offsets
    from livectx.schemas.serializers import RegistryEncoder
    from livectx.vectors.pgvector_store import PgVectorStore
    from livectx.vectors.sources import vector_id

    wired = make_repo()
    monkeypatch.setenv("LIVECTX_VECTOR_INDEX", f"test_{wired.project}")
    settings = get_settings(reload=True)
    assert f":{private_registry.settings.stack.schema_registry_port}/" in settings.schema_registry_url
    group, memory_group = f"wire-{wired.project}", f"wire-emb-{wired.project}"
    features, memory = GroupCommits.open(settings, group), GroupCommits.open(settings, memory_group)
    first = wired.produce(300, START, seed=42)
    targets = end_offsets(settings, [wired.topic])

    stop = threading.Event()
    result: dict[str, Any] = {}
    embeddings = EmbeddingWorker(
        settings, consumer_group=memory_group, embedder=embedder, dead_letter_topic=wired.dlq, max_wait_ms=5
    )

    def embed() -> None:
        try:
            result["embedded"] = embeddings.run()
        except BaseException as exc:
            result["embedding error"] = exc

    def work() -> None:
        try:
            result["stats"] = run_features_worker(
                settings,
                consumer_group=group,
                dead_letter_topic=wired.dlq,
                stop=stop,
                write_offline=False,
                metrics_interval_s=3600,
            )[0]
        except BaseException as exc:
            result["error"] = exc

    worker = threading.Thread(target=work, daemon=True)
    embedding_thread = threading.Thread(target=embed, daemon=True)
    caplog.set_level(logging.WARNING, logger="livectx_ingest.streaming.engine")
    caplog.set_level(logging.WARNING, logger="livectx_ingest.embeddings.worker")
    worker.start()
    embedding_thread.start()
    try:
        assert _wait(lambda: features.reached(targets), 120), result
        assert _wait(lambda: memory.reached(targets), 120), result

        # A new writer version while the worker runs: its id is one the worker has never seen.
        sources = wired.folder / "sources.py"
        sources.write_text(
            sources.read_text().replace(
                REGION, REGION + '        {"name": "region", "type": "string", "default": "eu"},\n'
            )
        )
        repo = wired.reload()
        assert "version 2" in _run("schemas", "apply")
        second = events_of(repo, 300, LATER, seed=7)
        encoder = RegistryEncoder.from_settings(settings, repo.sources.values())
        encoder.encode(second[0], wired.topic)  # the producer has looked its id up: it needs no registry now

        private_registry.process.stop()
        assert not private_registry.is_healthy()
        producer = make_producer(settings)
        for event in second:
            key, value, headers = encoder.encode(event, wired.topic)
            producer.produce(wired.topic, key=key, value=value, headers=headers)
        assert producer.flush(30) == 0
        targets = end_offsets(settings, [wired.topic])

        def paused(logger: str) -> bool:
            return any(r.name == logger and "pausing at" in r.getMessage() for r in caplog.records)

        assert _wait(lambda: paused("livectx_ingest.streaming.engine"), 60), caplog.text
        assert _wait(lambda: paused("livectx_ingest.embeddings.worker"), 60), caplog.text
        time.sleep(3)  # paused: the records wait in Kafka
        assert worker.is_alive() and not features.reached(targets)
        assert embedding_thread.is_alive() and not memory.reached(targets)
        no_dead_letters(settings, wired)

        private_registry.start()
        private_registry.wait_ready(180)
        assert _wait(lambda: features.reached(targets), 120), caplog.text
        assert _wait(lambda: memory.reached(targets), 120), caplog.text
        assert caplog.text.count("schema registry answers again") >= 2
    finally:
        stop.set()
        embeddings.stop()
        worker.join(60)
        embedding_thread.join(60)
        features.close()
        memory.close()
    assert "error" not in result and "embedding error" not in result, result
    assert result["stats"].events == 600  # each record applied once: nothing lost, nothing twice
    assert result["embedded"].dead_lettered == 0
    no_dead_letters(settings, wired)
    assert_online_equals_recomputation(repo, [*first, *second])
    store = PgVectorStore.from_settings(settings)
    try:
        rows = dict(store._run(lambda c: c.execute(f"SELECT id, text FROM {store.index}").fetchall()))
        latest = {vector_id(e.schema_name, e.key): e.text for e in [*first, *second]}  # per customer, in order
        assert rows == latest
    finally:
        store.drop()
        store.close()


def _wait(condition: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)  # polling a condition with a deadline
    return False


def test_the_transactional_loop_retries_a_batch_the_registry_could_not_decode(stack) -> None:  # type: ignore[no-untyped-def]
    """Agents and the repartitioner: the batch's transaction is aborted and rewound, then retried."""
    from types import SimpleNamespace

    from confluent_kafka import Message, Producer

    from livectx import serde
    from livectx.kafka import producer as make_producer
    from livectx.transactional import TransactionalLoop
    from tests.integration.engine_helpers import START as T0
    from tests.integration.engine_helpers import payment

    settings = get_settings()
    unique = uuid.uuid4().hex[:8]
    source, out, dlq = (create_topic(settings, f"test.{unique}.{n}", 2) for n in ("in", "out", "dlq"))
    model = type(payment("u", T0, 0))

    class FlakyRegistry:
        """Down for its first three requests."""

        calls = 0

        def get_schema(self, _schema_id: int) -> Any:
            FlakyRegistry.calls += 1
            if FlakyRegistry.calls <= 3:
                raise ConnectionError("registry restarting")
            return SimpleNamespace(schema_type="JSON", schema_str="{}")

    cache = wire.SchemaCache(FlakyRegistry())
    p = make_producer(settings)
    sent = [payment(f"u{i % 3}", T0 + timedelta(seconds=i), i) for i in range(20)]
    for event in sent:
        key, value, _ = serde.encode(event)
        p.produce(source, key=key, value=wire.frame(41, value))
    assert p.flush(30) == 0

    def handle(message: Message, producer: Producer) -> None:
        event = serde.decode(model, message.value(), cache)  # RegistryUnavailable: the loop retries
        producer.produce(out, key=message.key(), value=event.model_dump_json().encode())

    loop = TransactionalLoop(
        settings, name=f"wire-{unique}", topics=[source], consumer_group=f"wire-{unique}", worker_id="0",
        handle=handle, dead_letter_topic=dlq, batch_size=5,
    )  # fmt: skip
    stats = loop.run(until_caught_up=True)
    assert FlakyRegistry.calls == 4 and stats.consumed == 20 and stats.dead_lettered == 0
    copied = read_all(settings, out, expected=21, timeout_s=5.0)
    assert sorted(m.value() for m in copied) == sorted(e.model_dump_json().encode() for e in sent)
    assert read_all(settings, dlq, expected=1, timeout_s=2.0) == []


def test_decisions_and_model_versions_go_through_the_registry_and_plain_clients_read_them(  # type: ignore[no-untyped-def]
    make_repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``LIVECTX_SCHEMA_REGISTRY_PLATFORM_WIRE=confluent`` the agents' decision records are framed with
    the id ``schemas apply`` registered under ``livectx.decisions-value``: livectx's readers and a plain
    confluent-kafka ``JSONDeserializer`` read them."""
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.json_schema import JSONDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    from livectx.events import Decision
    from livectx.models.version import ModelVersion
    from livectx.models.version import decode as decode_version
    from livectx.schemas.platform import platform_encoder

    monkeypatch.setenv("LIVECTX_SCHEMA_REGISTRY_PLATFORM_WIRE", "confluent")
    make_repo()  # `schemas apply` registers the repo's sources and the decisions subject
    settings = get_settings(reload=True)
    encoder = platform_encoder(settings)
    schema_id = encoder.check()["decision"]
    decision = Decision(
        event_time=START, decision_id="d1", agent="fraud", entity_id="t1", action="decline", score=0.9,
        reasons=["card testing"], source="livectx.transactions-0-7", model="fraud:v2",
    )  # fmt: skip
    key, value, _headers = encoder.encode(decision, "livectx.decisions.renamed-for-a-test")
    assert key == b"t1" and wire.split(value)[0] == schema_id
    assert serde.decode(Decision, value) == decision  # what shadow mode, backtests and the archive read
    client = SchemaRegistryClient({"url": settings.schema_registry_url, "timeout": 30})  # a hang fails, not freezes
    plain = JSONDeserializer(None, schema_registry_client=client)
    read = plain(value, SerializationContext("livectx.decisions", MessageField.VALUE))
    assert read == decision.model_dump(mode="json")

    # The model registry's versions too (`livectx models register|activate` write with this encoder).
    version = ModelVersion(
        name="fraud", version="v9", artifact_uri="/tmp/m.joblib", artifact_sha256="a" * 64,
        feature_service="customer_features", feature_columns=("messages_1h",), registered_at=START,
    )  # fmt: skip
    framed_version = encoder.encode_value(version, "livectx.models")
    assert wire.split(framed_version)[0] == encoder.check()["model_version"] != schema_id
    assert decode_version(framed_version) == version
    assert plain(framed_version, SerializationContext("livectx.models", MessageField.VALUE)) == version.model_dump(
        mode="json"
    )
