"""A compiled repo pickled for a worker process (livectx.repo.snapshot): the event models built at run
time are built again from their declarations, identical, and the worker imports no Feast."""

from __future__ import annotations

import io
import json
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from livectx import serde
from livectx.errors import SchemaError
from livectx.repo import current_repo
from livectx.repo.schema import declaration, event_model, parse_avro, parse_ddl
from livectx.repo.snapshot import RepoPickler, write_snapshot

ROOT = Path(__file__).resolve().parents[2]


def _round_trip(model: type) -> type:
    buffer = io.BytesIO()
    RepoPickler(buffer).dump(model)
    buffer.seek(0)
    again: type = pickle.load(buffer)
    return again


def _models() -> list[type]:
    ddl = "customer_id STRING, amount DOUBLE, note STRING DEFAULT NULL, tier STRING DEFAULT 'basic', ts BIGINT"
    avro = {
        "type": "record",
        "name": "Login",
        "fields": [
            {"name": "user_id", "type": "string"},
            {"name": "ok", "type": "boolean", "default": True},
            {"name": "event_time", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        ],
    }
    return [
        event_model(
            "bank.payments",
            parse_ddl(ddl),
            timestamp_field="ts",
            key_field="customer_id",
            wire_format="json",
            checks={"amount": {"ge": 0, "le": 1e6}, "customer_id": {"min_length": 1}},
            allow_non_finite=True,
            max_ahead_ms=5_000,
            max_behind_ms=None,
        ),
        event_model(
            "logins",
            parse_avro(json.dumps(avro), "logins"),
            timestamp_field="event_time",
            key_field="user_id",
            wire_format="avro",
            avro_schema=avro,
            envelope="debezium",
        ),
        *(spec.model for spec in current_repo().sources.values()),
    ]


def test_every_declared_model_is_built_again_from_its_declaration() -> None:
    for model in _models():  # two made here (checks, epoch-ms time, defaults; Avro, an envelope), the repo's
        _assert_same_model(model, _round_trip(model))


def _assert_same_model(model: type, again: type) -> None:
    assert again is not model
    assert again.model_json_schema() == model.model_json_schema()
    assert declaration(again) == declaration(model)
    for name in ("schema_name", "key_field", "wire_format", "wire_timestamp_field", "avro_schema", "envelope"):
        assert getattr(again, name) == getattr(model, name), name
    assert again.model_config == model.model_config
    assert [c.required for c in again.declared_columns] == [c.required for c in model.declared_columns]


def test_the_rebuilt_model_reads_and_refuses_the_same_records() -> None:
    model = _models()[0]
    again = _round_trip(model)
    good = json.dumps({"customer_id": "c1", "amount": 3.5, "ts": 1_700_000_000_000}).encode()
    assert serde.decode(again, good).model_dump() == serde.decode(model, good).model_dump()
    assert serde.decode(again, good).tier == "basic"
    for bad in ({"customer_id": "c1", "amount": -1, "ts": 1}, {"customer_id": "", "amount": 1, "ts": 1}):
        with pytest.raises(SchemaError) as original:
            serde.decode(model, json.dumps(bad).encode())
        with pytest.raises(SchemaError) as rebuilt:
            serde.decode(again, json.dumps(bad).encode())
        assert str(rebuilt.value) == str(original.value)


def test_a_worker_loads_the_repo_without_feast_and_with_one_class_per_model(tmp_path: Path) -> None:
    repo = current_repo()
    path = tmp_path / "repo.pickle"
    with path.open("wb") as file:
        write_snapshot(repo, file)
    code = f"""
import sys
from livectx.repo.snapshot import read_snapshot
with open({str(path)!r}, "rb") as file:
    repo = read_snapshot(file)
assert not [m for m in sys.modules if m == "feast" or m.startswith("feast.")], "feast was imported"
for group in repo.groups:
    spec = repo.source_for_topic(group.source_topic)
    assert group.event_type is spec.model, group.name
print(sorted(repo.sources), len(repo.groups), sorted(repo.services), sorted(repo.decisions))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stderr
    expected: Any = (sorted(repo.sources), len(repo.groups), sorted(repo.services), sorted(repo.decisions))
    assert result.stdout.strip() == " ".join(repr(x) for x in expected)
    assert repo.groups and repo.decisions  # the example repo: something to compare
