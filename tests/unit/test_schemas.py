"""Schemas as code without a registry: derivation from declared sources, and the plan against a fake registry."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from feast.data_format import AvroFormat, JsonFormat

from livectx.repo.compile import RepoError, compile_source
from livectx.repo.declare import stream_source
from livectx.repo.schema import SchemaDeclarationError
from livectx.schemas.derive import DeclaredSchema, declared_schema
from livectx.schemas.explain import reasons
from livectx.schemas.plan import INCOMPATIBLE, NEW, NEW_VERSION, REFUSED, REGISTERED, UNCHANGED, apply, plan

AVRO = {
    "type": "record",
    "name": "Payment",
    "namespace": "shop",
    "fields": [
        {"name": "payment_id", "type": "string"},
        {"name": "event_time", "type": "long"},
        {"name": "amount", "type": "double"},
        {"name": "note", "type": ["null", "string"], "default": None},
    ],
}


def _source(schema: Any, **kwargs: Any) -> Any:
    declared = stream_source(
        name="payment", topic="shop.payments", schema=schema, timestamp_field="event_time", key="payment_id", **kwargs
    )
    return compile_source(declared, "payment_id")


def _declared(schema: Any, **kwargs: Any) -> DeclaredSchema:
    return declared_schema(_source(schema, **kwargs))


def test_an_avro_source_registers_its_declared_schema_under_topic_value() -> None:
    declared = _declared(AvroFormat(json.dumps(AVRO)))
    assert (declared.subject, declared.schema_type, declared.compatibility) == (
        "shop.payments-value",
        "AVRO",
        "BACKWARD_TRANSITIVE",
    )
    assert json.loads(declared.schema_str) == AVRO


def test_a_json_source_gets_a_closed_json_schema_with_types_required_fields_and_defaults() -> None:
    ddl = (
        "event_time TIMESTAMP, payment_id STRING, amount DOUBLE, qty INT, paid BOOLEAN DEFAULT false, "
        "note STRING DEFAULT NULL, channel STRING DEFAULT 'web'"
    )
    declared = _declared(JsonFormat(ddl), checks={"amount": {"ge": 0}, "channel": {"max_length": 8}})
    schema = declared.schema
    assert declared.schema_type == "JSON"
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert schema["required"] == ["event_time", "payment_id", "amount", "qty"]
    props = schema["properties"]
    assert props["event_time"] == {"type": "string", "format": "date-time"}
    assert props["amount"] == {"type": "number", "minimum": 0}
    assert props["qty"] == {"type": "integer"}
    assert props["paid"] == {"type": "boolean", "default": False}
    assert props["note"] == {"type": ["string", "null"], "default": None}
    assert props["channel"] == {"type": "string", "default": "web", "maxLength": 8}


def test_an_epoch_ms_event_time_is_an_integer_in_the_json_schema() -> None:
    declared = _declared(JsonFormat("event_time BIGINT, payment_id STRING"))
    assert declared.schema["properties"]["event_time"] == {"type": "integer"}


def test_the_compatibility_level_is_declared_per_source_and_checked() -> None:
    assert _declared(AvroFormat(json.dumps(AVRO)), compatibility="FULL_TRANSITIVE").compatibility == "FULL_TRANSITIVE"
    with pytest.raises(SchemaDeclarationError, match=r"source payment: compatibility 'SIDEWAYS' is not one of"):
        _declared(AvroFormat(json.dumps(AVRO)), compatibility="SIDEWAYS")


def test_a_hand_written_compatibility_tag_is_checked_too() -> None:
    from feast import KafkaSource

    plain = stream_source(
        name="payment", topic="t", schema=AvroFormat(json.dumps(AVRO)), timestamp_field="event_time", key="payment_id"
    )
    broken = KafkaSource(
        name="payment",
        topic="t",
        timestamp_field="event_time",
        message_format=plain.kafka_options.message_format,
        batch_source=plain.batch_source,
        tags={**plain.tags, "livectx.compatibility": "backward"},
    )
    with pytest.raises(RepoError, match=r"source payment: compatibility 'backward' \(tag livectx.compatibility\)"):
        compile_source(broken, "payment_id")


def _avro(*fields: dict[str, Any]) -> dict[str, Any]:
    return {**AVRO, "fields": [*AVRO["fields"], *fields]}


def _with_field(name: str, new: dict[str, Any] | None) -> dict[str, Any]:
    fields = (
        [f for f in AVRO["fields"] if f["name"] != name]
        if new is None
        else [new if f["name"] == name else f for f in AVRO["fields"]]
    )
    return {**AVRO, "fields": fields}


@pytest.mark.parametrize(
    ("new", "level", "expected"),
    [
        (
            _with_field("event_time", {"name": "event_time", "type": "string"}),
            "BACKWARD_TRANSITIVE",
            ["field 'event_time' changed type from long to string"],
        ),
        (_avro({"name": "channel", "type": "string"}), "BACKWARD", ["field 'channel' was added without a default"]),
        (_avro({"name": "channel", "type": "string", "default": "web"}), "BACKWARD_TRANSITIVE", []),
        (_with_field("amount", None), "BACKWARD", []),  # a backward reader ignores what it no longer declares
        (_with_field("amount", None), "FULL_TRANSITIVE", ["field 'amount' was removed, but readers of the old"]),
        (_with_field("note", {"name": "note", "type": "string"}), "BACKWARD", ["field 'note' is no longer nullable"]),
        (_with_field("amount", {"name": "amount", "type": "int"}), "FORWARD", []),  # int widens to double
    ],
)
def test_avro_reasons_name_the_field_and_why(new: dict[str, Any], level: str, expected: list[str]) -> None:
    found = reasons("AVRO", AVRO, new, level)
    assert len(found) == len(expected)
    for line, start in zip(found, expected, strict=True):
        assert line.startswith(start)


def test_json_schema_reasons_cover_a_removed_field_of_a_closed_model() -> None:
    old = _declared(JsonFormat("event_time TIMESTAMP, payment_id STRING, amount DOUBLE")).schema
    removed = _declared(JsonFormat("event_time TIMESTAMP, payment_id STRING")).schema
    retyped = _declared(JsonFormat("event_time TIMESTAMP, payment_id STRING, amount STRING")).schema
    assert reasons("JSON", old, removed, "BACKWARD")[0].startswith("field 'amount' was removed")
    assert reasons("JSON", old, retyped, "BACKWARD") == ["field 'amount' changed type from number to string"]


class FakeRegistry:
    """The :class:`~livectx.schemas.client.Registry` calls, in memory. ``verdict`` is what ``test`` answers."""

    def __init__(self, verdict: bool = True, messages: list[str] | None = None) -> None:
        self.subjects: dict[str, list[str]] = {}
        self.levels: dict[str, str] = {}
        self.verdict, self.messages = verdict, messages or []
        self.writes: list[tuple[str, ...]] = []

    def compatibility(self, subject: str) -> str | None:
        return self.levels.get(subject)

    def versions(self, subject: str) -> list[tuple[int, dict[str, Any]]]:
        return [(i + 1, json.loads(s)) for i, s in enumerate(self.subjects.get(subject, []))]

    def find(self, subject: str, schema_type: str, schema_str: str) -> int | None:
        stored = [json.loads(s) for s in self.subjects.get(subject, [])]
        return stored.index(json.loads(schema_str)) + 1 if json.loads(schema_str) in stored else None

    def test(self, subject: str, schema_type: str, schema_str: str) -> tuple[bool, list[str]]:
        return self.verdict, self.messages

    def set_compatibility(self, subject: str, level: str | None) -> None:
        self.writes.append(("level", subject, str(level)))
        if level is None:
            self.levels.pop(subject, None)
        else:
            self.levels[subject] = level

    def register(self, subject: str, schema_type: str, schema_str: str) -> tuple[int, int]:
        self.writes.append(("register", subject))
        self.subjects.setdefault(subject, []).append(schema_str)
        return 100 + len(self.writes), len(self.subjects[subject])


def _avro_declared(schema: dict[str, Any], level: str = "BACKWARD_TRANSITIVE") -> DeclaredSchema:
    return DeclaredSchema("payment", "shop.payments-value", "AVRO", schema, level)


def test_plan_classifies_new_unchanged_and_a_compatible_new_version() -> None:
    registry = FakeRegistry()
    [change] = plan(registry, [_avro_declared(AVRO)])
    assert (change.action, change.compatibility) == (NEW, "default -> BACKWARD_TRANSITIVE")
    assert registry.writes == []  # a plan writes nothing

    [applied] = apply(registry, [_avro_declared(AVRO)])
    assert applied.action == REGISTERED
    assert registry.writes == [
        ("level", "shop.payments-value", "BACKWARD_TRANSITIVE"),
        ("register", "shop.payments-value"),
    ]

    [again] = plan(registry, [_avro_declared(AVRO)])
    assert (again.action, again.compatibility, again.detail) == (UNCHANGED, "BACKWARD_TRANSITIVE", "version 1")

    added = _avro({"name": "channel", "type": ["null", "string"], "default": None})
    [compatible] = plan(registry, [_avro_declared(added)])
    assert (compatible.action, compatible.problems) == (NEW_VERSION, ())
    assert apply(registry, [_avro_declared(added)])[0].detail.startswith("version 2")


def test_an_incompatible_change_is_planned_with_reasons_and_refused_by_apply_without_writes() -> None:
    registry = FakeRegistry()
    apply(registry, [_avro_declared(AVRO)])
    registry.verdict = False  # what the registry's test answers for the change below
    registry.writes.clear()
    retyped = _with_field("event_time", {"name": "event_time", "type": "string"})
    [change] = plan(registry, [_avro_declared(retyped)])
    assert change.action == INCOMPATIBLE
    assert change.problems == ("shop.payments-value: field 'event_time' changed type from long to string",)
    [refused] = apply(registry, [_avro_declared(retyped)])
    assert refused.action == REFUSED and refused.problems == change.problems
    assert registry.writes == []


def test_without_a_local_reason_the_registrys_own_messages_are_shown() -> None:
    registry = FakeRegistry(verdict=False, messages=["reader type: STRING not compatible with writer type: LONG"])
    registry.subjects["shop.payments-value"] = [json.dumps(AVRO)]
    registry.levels["shop.payments-value"] = "BACKWARD_TRANSITIVE"
    odd = {**AVRO, "doc": "the registry says no for a reason this module does not model"}
    [change] = plan(registry, [_avro_declared(odd)])
    assert change.problems == ("shop.payments-value: reader type: STRING not compatible with writer type: LONG",)


def test_a_level_change_is_judged_under_the_declared_level_and_reverted_if_the_registry_refuses() -> None:
    registry = FakeRegistry()
    registry.subjects["shop.payments-value"] = [json.dumps(AVRO)]
    registry.levels["shop.payments-value"] = "BACKWARD"
    removed = _with_field("amount", None)
    [change] = plan(registry, [_avro_declared(removed, "FULL_TRANSITIVE")])
    assert (change.action, change.compatibility) == (INCOMPATIBLE, "BACKWARD -> FULL_TRANSITIVE")
    assert change.problems[0].startswith("shop.payments-value: field 'amount' was removed")

    registry.verdict = False  # locally fine, but the registry (under the new level) disagrees
    added = _avro({"name": "channel", "type": "string", "default": "web"})
    [refused] = apply(registry, [_avro_declared(added, "FULL_TRANSITIVE")])
    assert refused.action == REFUSED
    assert registry.levels["shop.payments-value"] == "BACKWARD"  # put back
    assert ("register", "shop.payments-value") not in registry.writes


def test_the_platform_topics_have_closed_json_schemas_generated_from_their_models() -> None:
    import jsonschema

    from livectx.events import Decision
    from livectx.schemas.platform import platform_schemas
    from livectx.settings import Settings

    declared_by_model = {model: declared for model, declared in platform_schemas(Settings())}
    declared = declared_by_model[Decision]
    assert declared.subject == "livectx.decisions-value" and declared.schema_type == "JSON"
    assert [d.subject for d in declared_by_model.values()] == ["livectx.decisions-value", "livectx.models-value"]
    assert declared.compatibility == "BACKWARD_TRANSITIVE" and declared.wire == "plain"  # the default
    assert declared.schema["additionalProperties"] is False
    decision = Decision(
        event_time=datetime(2026, 3, 10, tzinfo=UTC), decision_id="d", agent="router", entity_id="t",
        action="route:billing", source="livectx.tickets-0-1",
    )  # fmt: skip
    jsonschema.validate(decision.model_dump(mode="json"), declared.schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**decision.model_dump(mode="json"), "extra": 1}, declared.schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**decision.model_dump(mode="json"), "score": "high"}, declared.schema)


def test_decisions_are_plain_by_default_and_framed_only_when_the_settings_say_so(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from livectx import serde
    from livectx.events import Decision
    from livectx.schemas.platform import platform_encoder
    from livectx.schemas.serializers import SchemaNotRegistered
    from livectx.settings import Settings

    decision = Decision(
        event_time=datetime(2026, 3, 10, tzinfo=UTC), decision_id="d", agent="fraud", entity_id="t1",
        action="approve", source="s",
    )  # fmt: skip
    plain = platform_encoder(Settings())
    assert plain.check() == {} and plain.encode(decision, "livectx.decisions") == serde.encode(decision)
    monkeypatch.setenv("LIVECTX_SCHEMA_REGISTRY_PLATFORM_WIRE", "confluent")
    framed = platform_encoder(Settings())
    assert framed.framed_sources == ["decision", "model_version"]

    class Empty:  # a registry without the subject: the encoder refuses before writing anything
        def lookup_schema(self, subject: str, schema: Any) -> Any:
            from confluent_kafka.schema_registry.error import SchemaRegistryError

            raise SchemaRegistryError(404, 40401, f"subject {subject} not found")

    framed._client = Empty()
    with pytest.raises(SchemaNotRegistered, match=r"livectx\.decisions-value.*run `livectx schemas apply`"):
        framed.check()


def test_change_data_capture_sources_register_no_schema() -> None:
    from livectx.repo.loader import load_repo
    from livectx.schemas.derive import declared_schemas

    repo = load_repo("feature_repo")
    subjects = {d.subject for d in declared_schemas(repo.sources)}
    captured = {spec.subject for spec in repo.sources.values() if spec.cdc is not None}
    assert captured and not captured & subjects  # Debezium's envelopes are Connect's converter's to describe
    assert "livectx.transactions-value" in subjects
