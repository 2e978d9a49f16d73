"""`livectx schemas plan | apply | check` against the real Apicurio Registry of the local stack.

Each test declares its sources in a small feature repo of its own (unique topics, so unique subjects),
changes a declaration the way a producing team would, and runs the CLI as CI would.
"""

from __future__ import annotations

import json
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from livectx.cli import cli
from livectx.settings import Settings

FEATURE_STORE_YAML = "project: schemas\nprovider: local\nregistry: registry.db\nonline_store:\n  type: sqlite\n"
PAYMENT_FIELDS = [
    {"name": "payment_id", "type": "string"},
    {"name": "event_time", "type": "long"},
    {"name": "amount", "type": "double"},
    {"name": "paid_at", "type": "long"},  # epoch milliseconds
]


def _avro(fields: list[dict[str, Any]]) -> str:
    return json.dumps({"type": "record", "name": "Payment", "namespace": "shop", "fields": fields})


class Repo:
    """A feature repo on disk whose sources a test rewrites between runs of the CLI."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root, self.monkeypatch, self.runs = root, monkeypatch, 0
        self.topic = f"schemas{uuid.uuid4().hex[:8]}.payments"
        self.subject = f"{self.topic}-value"

    def declare(self, fields: list[dict[str, Any]] | None = None, *, ddl: str | None = None, **options: Any) -> None:
        # A new folder per declaration: the loader caches repos per path, as a long-lived process would.
        self.runs += 1
        folder = self.root / f"v{self.runs}"
        folder.mkdir()
        (folder / "feature_store.yaml").write_text(FEATURE_STORE_YAML)
        schema = f"JsonFormat({ddl!r})" if ddl is not None else f"AvroFormat({_avro(fields or PAYMENT_FIELDS)!r})"
        extra = "".join(f", {k}={v!r}" for k, v in options.items())
        (folder / "sources.py").write_text(
            textwrap.dedent(
                f"""
                from feast.data_format import AvroFormat, JsonFormat
                from livectx.repo.declare import stream_source

                payment = stream_source(name="payment", topic={self.topic!r}, schema={schema},
                                        timestamp_field="event_time", key="payment_id"{extra})
                """
            )
        )
        self.monkeypatch.setenv("LIVECTX_FEATURE_REPO", str(folder))

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(cli, ["schemas", *args])


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, schema_registry: str) -> Iterator[Repo]:
    from livectx.settings import get_settings

    yield Repo(tmp_path, monkeypatch)
    # Each in-process CLI run reloaded the process-wide settings with this test's repo: put them back,
    # or later tests would read an empty repo.
    monkeypatch.undo()
    get_settings(reload=True)


def _versions(settings: Settings, subject: str) -> list[int]:
    from confluent_kafka.schema_registry import SchemaRegistryClient

    return SchemaRegistryClient(settings.schema_registry_config()).get_versions(subject)


def _refused_by_check_and_apply(repo: Repo, settings: Settings, expected_line: str) -> None:
    check = repo.run("check")
    assert check.exit_code == 1, check.output
    problems = [line for line in check.stderr.splitlines() if line]
    assert problems == [expected_line]
    apply = repo.run("apply")
    assert apply.exit_code == 1, apply.output
    assert expected_line in apply.stderr.splitlines()
    assert "Traceback" not in apply.output
    assert _versions(settings, repo.subject) == [1]  # nothing registered


def test_incompatible_changes_are_refused_naming_the_field(repo: Repo, settings: Settings) -> None:
    repo.declare()
    first = repo.run("apply")
    assert first.exit_code == 0, first.output
    assert "registered" in first.output
    assert repo.run("check").exit_code == 0
    assert "unchanged" in repo.run("plan").output

    # The article's example: epoch milliseconds turned into an ISO-8601 string.
    repo.declare([*PAYMENT_FIELDS[:3], {"name": "paid_at", "type": "string"}])
    plan = repo.run("plan")
    assert plan.exit_code == 0 and "INCOMPATIBLE" in plan.output
    _refused_by_check_and_apply(repo, settings, f"{repo.subject}: field 'paid_at' changed type from long to string")

    # A new field without a default: the records already written lack it.
    repo.declare([*PAYMENT_FIELDS, {"name": "channel", "type": "string"}])
    _refused_by_check_and_apply(
        repo, settings, f"{repo.subject}: field 'channel' was added without a default (records already written lack it)"
    )


def test_removing_a_required_field_is_refused(repo: Repo, settings: Settings) -> None:
    # Avro under a backward level lets the new reader ignore the field; FULL_TRANSITIVE protects the
    # readers of the old schema too, which is what refuses the removal.
    repo.declare(compatibility="FULL_TRANSITIVE")
    assert repo.run("apply").exit_code == 0
    repo.declare([*PAYMENT_FIELDS[:2], PAYMENT_FIELDS[3]], compatibility="FULL_TRANSITIVE")
    _refused_by_check_and_apply(
        repo,
        settings,
        f"{repo.subject}: field 'amount' was removed, but readers of the old schema require it (it has no default)",
    )


def test_a_json_sources_epoch_ms_event_time_turned_into_an_iso_string_is_refused(
    repo: Repo, settings: Settings
) -> None:
    repo.declare(ddl="event_time BIGINT, payment_id STRING, amount DOUBLE")
    assert repo.run("apply").exit_code == 0
    repo.declare(ddl="event_time TIMESTAMP, payment_id STRING, amount DOUBLE")
    _refused_by_check_and_apply(
        repo, settings, f"{repo.subject}: field 'event_time' changed type from integer to string (date-time)"
    )


def test_removing_a_required_field_of_a_json_source_is_refused_at_the_default_level(
    repo: Repo, settings: Settings
) -> None:
    repo.declare(ddl="event_time BIGINT, payment_id STRING, amount DOUBLE")
    assert repo.run("apply").exit_code == 0
    repo.declare(ddl="event_time BIGINT, payment_id STRING")
    _refused_by_check_and_apply(
        repo,
        settings,
        f"{repo.subject}: field 'amount' was removed (records already written still carry it, and the schema "
        "allows no other fields)",
    )


def test_a_new_optional_field_with_a_default_is_a_new_version_that_survives_a_restart(
    repo: Repo, settings: Settings
) -> None:
    from livectx.stack.manager import Stack

    repo.declare()
    assert repo.run("apply").exit_code == 0
    repo.declare([*PAYMENT_FIELDS, {"name": "channel", "type": ["null", "string"], "default": None}])
    plan = repo.run("plan")
    assert "new version" in plan.output, plan.output
    applied = repo.run("apply")
    assert applied.exit_code == 0, applied.output
    assert _versions(settings, repo.subject) == [1, 2]
    assert repo.run("check").exit_code == 0

    stack = Stack(settings)
    registry = stack.service("schema-registry")
    if registry.process.pid() is None:
        pytest.skip("the registry was not started by this stack: not restarting someone else's service")
    stack.down(["schema-registry"])
    stack.up(["schema-registry"])
    assert _versions(settings, repo.subject) == [1, 2]
    assert "unchanged" in repo.run("plan").output
    from confluent_kafka.schema_registry import SchemaRegistryClient

    client = SchemaRegistryClient(settings.schema_registry_config())
    assert client.get_compatibility(repo.subject) == "BACKWARD_TRANSITIVE"
