"""The model registry without a broker: record validation, key layout, the state fold, artifact checks,
the CLI's one-line errors for bad input, and the fraud agent's scorer swap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import joblib
import pytest
from click.testing import CliRunner
from livectx_agents.example_fraud import CardTestingRules, FraudAgent, RegistryFollower
from sklearn.dummy import DummyClassifier

from livectx.models import artifacts
from livectx.models.errors import ArtifactIntegrityError, ModelRegistryError
from livectx.models.registry import load_artifact
from livectx.models.state import RegistryState
from livectx.models.version import (
    ModelVersion,
    active_key,
    decode,
    encode,
    parse_key,
    parse_ref,
    version_key,
)
from livectx.settings import Settings
from tests.example import FRAUD_MODEL_FEATURES

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def constant_model(path: Path, fraud_share: float) -> Path:
    """A real classifier whose fraud probability is ``fraud_share`` for every input."""
    positives = round(100 * fraud_share)
    labels = [1] * positives + [0] * (100 - positives)
    model = DummyClassifier(strategy="prior").fit([[0.0] * (len(FRAUD_MODEL_FEATURES) + 1)] * 100, labels)
    joblib.dump(model, path)
    return path


def record(version: str = "v1", **changes: object) -> ModelVersion:
    fields: dict[str, object] = {
        "name": "fraud",
        "version": version,
        "artifact_uri": f"/tmp/_models/fraud/{version}/m.joblib",
        "artifact_sha256": "a" * 64,
        "feature_service": "fraud_features",
        "feature_columns": FRAUD_MODEL_FEATURES,
        "training_start": T0,
        "training_end": T0 + timedelta(days=1),
        "metrics": {"precision": 0.98, "recall": 1},
        "config": {"threshold": 0.6, "notes": ["any", "json"]},
        "registered_at": T0 + timedelta(days=2),
    }
    return ModelVersion.model_validate({**fields, **changes})


# -- the record -----------------------------------------------------------------------------------------


def test_a_record_survives_the_wire_unchanged() -> None:
    original = record()
    value, headers = encode(original)
    assert decode(value) == original
    assert headers == [("livectx-schema", b"model_version.v1")]
    assert original.ref == "fraud:v1"


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"feature_service": "nope"}, "unknown feature service 'nope'"),
        ({"feature_columns": ("txn_count_5m", "clicks_last_1h")}, "not in service fraud_features: clicks_last_1h"),
        ({"feature_columns": ()}, "at least 1 item"),
        ({"feature_columns": ("txn_count_5m", "txn_count_5m")}, "repeat"),
        ({"artifact_sha256": "xyz"}, "artifact_sha256"),
        ({"name": "Fraud"}, "name"),
        ({"name": "fraud@x"}, "name"),
        ({"version": "v:1"}, "version"),
        ({"training_start": T0 + timedelta(days=5)}, "training_start is after training_end"),
        ({"registered_at": datetime(2026, 1, 1)}, "timezone"),
        ({"metrics": {"precision": "high"}}, "metrics"),
        ({"owner": "me"}, "owner"),
    ],
)
def test_invalid_records_are_refused_with_the_field_named(changes: dict[str, object], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        record(**changes)


def test_decode_names_the_bad_field() -> None:
    value, _ = encode(record())
    with pytest.raises(ModelRegistryError, match="feature_service"):
        decode(value.replace(b'"fraud_features"', b'"other"'))
    with pytest.raises(ModelRegistryError, match="schema violation"):
        decode(b"not json")


# -- keys -----------------------------------------------------------------------------------------------


def test_key_layout_active_and_every_version() -> None:
    assert active_key("fraud") == b"fraud"
    assert version_key("fraud", "v1") == b"fraud@v1"
    assert parse_key(b"fraud") == ("fraud", None)
    assert parse_key(b"fraud@2026-05-01.1") == ("fraud", "2026-05-01.1")
    assert parse_ref("fraud:v1") == ("fraud", "v1")
    assert parse_ref("fraud") == ("fraud", None)
    for bad in ("Fraud", "fraud:", "fraud:v@1", "", "1fraud"):
        with pytest.raises(ModelRegistryError):
            parse_ref(bad)
    with pytest.raises(ModelRegistryError):
        parse_key(b"\xff\xfe")


def test_state_follows_activate_replace_retire_and_keeps_every_version() -> None:
    state = RegistryState()
    v1, v2 = record("v1"), record("v2")
    assert state.apply(version_key("fraud", "v1"), encode(v1)[0]) is None  # a version alone activates nothing
    assert state.apply(active_key("fraud"), encode(v1)[0]) == ("fraud", v1)
    assert state.apply(active_key("fraud"), encode(v1)[0]) is None  # the same record again: no change
    state.apply(version_key("fraud", "v2"), encode(v2)[0])
    assert state.apply(active_key("fraud"), encode(v2)[0]) == ("fraud", v2)
    assert state.apply(active_key("fraud"), None) == ("fraud", None)  # tombstone: retired
    assert state.resolve("fraud", None) is None
    assert state.resolve("fraud", "v1") == v1 and state.resolve("fraud", "v2") == v2
    assert state.apply(active_key("fraud"), None) is None  # retiring twice changes nothing


def test_state_refuses_a_record_under_another_key() -> None:
    state = RegistryState()
    with pytest.raises(ModelRegistryError, match="under the key"):
        state.apply(version_key("fraud", "v2"), encode(record("v1"))[0])
    with pytest.raises(ModelRegistryError, match="under the key"):
        state.apply(active_key("other"), encode(record("v1"))[0])
    with pytest.raises(ModelRegistryError, match="without a key"):
        state.apply(None, encode(record("v1"))[0])
    assert state.active == {} and state.versions == {}


# -- artifacts ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("base", ["local", "memory"])
def test_artifact_upload_then_verified_load(tmp_path: Path, base: str, unique: str) -> None:
    source = constant_model(tmp_path / "m.joblib", 0.9)
    models_url = str(tmp_path / "store") if base == "local" else f"memory://models-{unique}"
    uri = artifacts.artifact_uri(models_url, "fraud", "v1", source.name)
    sha = artifacts.upload(source, uri)
    assert sha == artifacts.sha256_file(source)
    loaded = artifacts.load_joblib(artifacts.read_verified(uri, sha), uri)
    assert loaded.predict_proba([[0.0] * 8])[0][1] == pytest.approx(0.9)


def test_an_altered_artifact_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVECTX_TIER_URL", str(tmp_path / "tier"))
    settings = Settings()
    source = constant_model(tmp_path / "m.joblib", 0.9)
    uri = artifacts.artifact_uri(settings.models_url, "fraud", "v1", source.name)
    assert uri.startswith(str(tmp_path / "tier" / "_models"))
    version = record(artifact_uri=uri, artifact_sha256=artifacts.upload(source, uri))
    assert load_artifact(settings, version).predict_proba([[0.0] * 8])[0][1] == pytest.approx(0.9)
    constant_model(Path(uri), 0.1)  # someone overwrites the stored file
    with pytest.raises(ArtifactIntegrityError, match="changed after registration"):
        load_artifact(settings, version)
    Path(uri).unlink()
    with pytest.raises(ModelRegistryError, match="could not read the artifact"):
        load_artifact(settings, version)


def test_upload_of_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ModelRegistryError, match="does not exist"):
        artifacts.upload(tmp_path / "nope.joblib", str(tmp_path / "x"))
    (tmp_path / "bad.joblib").write_bytes(b"not a pickle")
    with pytest.raises(ModelRegistryError, match="not a loadable joblib artifact"):
        artifacts.load_joblib((tmp_path / "bad.joblib").read_bytes(), "bad.joblib")


# -- the fraud agent follows versions ---------------------------------------------------------------------


class _NoContext:
    def close(self) -> None: ...


def test_follower_swaps_scorers_falls_back_on_retire_and_refuses_a_bad_artifact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("LIVECTX_TIER_URL", str(tmp_path / "tier"))
    settings = Settings()

    def stored(version: str, share: float) -> ModelVersion:
        source = constant_model(tmp_path / f"{version}.joblib", share)
        uri = artifacts.artifact_uri(settings.models_url, "fraud", version, source.name)
        return record(version, artifact_uri=uri, artifact_sha256=artifacts.upload(source, uri), config={})

    agent = FraudAgent(_NoContext(), CardTestingRules())  # type: ignore[arg-type]
    follow = RegistryFollower(settings, agent, "fraud")
    caplog.set_level("INFO")
    follow(None)
    assert agent.scorer.name == "rules:card-testing" and "no active version of model fraud" in caplog.text
    follow(stored("v1", 0.2))
    assert agent.scorer.name == "fraud:v1" and agent.wait_for_scorer("fraud:v1", 0)
    v2 = stored("v2", 0.9)
    follow(v2.model_copy(update={"config": {"threshold": 0.95}}))
    assert agent.scorer.name == "fraud:v2" and agent.scorer.threshold == 0.95
    assert "switched from fraud:v1 to fraud:v2" in caplog.text
    assert agent.scorer.score({}, 1.0)[0] == pytest.approx(0.9)

    Path(v2.artifact_uri).write_bytes(b"tampered")
    follow(v2.model_copy(update={"version": "v3"}))  # same (now altered) bytes, claimed sha of v2
    assert agent.scorer.name == "fraud:v2", "an altered artifact must not replace a working scorer"
    assert "cannot use fraud:v3" in caplog.text

    follow(None)
    assert agent.scorer.name == "rules:card-testing"
    assert "model fraud retired in the registry: falling back to the card-testing rules" in caplog.text
    assert not agent.wait_for_scorer("fraud:v2", 0.05)


# -- CLI input errors (caught before any broker is needed) ------------------------------------------------


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    from livectx import cli as root

    monkeypatch.setitem(root.CORE_COMMANDS, "models", "livectx.cli.models:models")
    monkeypatch.setenv("LIVECTX_TIER_URL", str(tmp_path / "tier"))
    return root.cli


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "Fraud!", "--version", "v1"], "bad model name 'Fraud!'"),
        (["--name", "fraud", "--version", "v 1"], "bad version 'v 1'"),
        (["--name", "fraud", "--version", "v1", "--artifact", "/nonexistent.joblib"], "does not exist"),
        (["--name", "fraud", "--version", "v1", "--service", "nope"], "unknown feature service 'nope'"),
        (
            ["--name", "fraud", "--version", "v1", "--service", "fraud_features", "--columns", "txn_count_5m,bogus"],
            "not in service",
        ),
        (["--name", "fraud", "--version", "v1", "--metrics-json", "{"], "--metrics-json is not JSON"),
        (["--name", "fraud", "--version", "v1", "--metrics-json", "[1]"], "must be a JSON object"),
        (["--name", "fraud", "--version", "v1", "--config-json", '"x"'], "--config-json must be a JSON object"),
    ],
)
def test_register_bad_input_is_one_red_line(cli, tmp_path: Path, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    artifact = constant_model(tmp_path / "m.joblib", 0.5)
    if "--artifact" not in args:
        args = [*args, "--artifact", str(artifact)]
    result = CliRunner().invoke(cli, ["models", "register", *args, "--topic", "test.never.read"])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output


def test_register_refuses_a_file_no_agent_could_load(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "notes.txt").write_text("not a model")
    result = CliRunner().invoke(
        cli,
        [
            "models",
            "register",
            "--name",
            "fraud",
            "--version",
            "v1",
            "--service",
            "fraud_features",
            "--artifact",
            str(tmp_path / "notes.txt"),
        ],
    )
    assert result.exit_code == 1 and "not a loadable joblib artifact" in result.output
    assert not (tmp_path / "tier").exists(), "nothing may be uploaded for a refused registration"


def test_agent_takes_a_model_file_or_a_registered_name_not_both(tmp_path: Path) -> None:
    from livectx_agents.example_fraud import open_fraud_agent

    from livectx.errors import LivectxError

    with pytest.raises(LivectxError, match=r"either --model .* or --model-name"):
        open_fraud_agent(Settings(), model=constant_model(tmp_path / "m.joblib", 0.5), model_name="fraud")
    with pytest.raises(LivectxError, match="bad model name 'Fraud'"):
        open_fraud_agent(Settings(), model_name="Fraud")


def test_a_version_record_in_the_confluent_wire_format_reads_like_a_plain_one() -> None:
    from livectx import wire
    from livectx.models.version import decode, encode

    value, _headers = encode(record())
    assert decode(wire.frame(42, value)) == decode(value) == record()
    with pytest.raises(ModelRegistryError):
        decode(wire.frame(42, b'{"name": 7}'))


class _ElectingConsumer:
    """A consumer whose first watermark reads fail as on a topic created a moment ago (no leader known yet)."""

    def __init__(self, failures: int, code: int) -> None:
        self.failures, self.code, self.calls = failures, code, 0

    def get_watermark_offsets(self, tp: Any, timeout: float, cached: bool) -> tuple[int, int]:
        from confluent_kafka import KafkaError, KafkaException

        self.calls += 1
        if self.calls <= self.failures:
            raise KafkaException(KafkaError(self.code))
        return 0, 7


def _reader(fake: _ElectingConsumer) -> Any:
    from livectx.models.reader import TopicReader

    reader = object.__new__(TopicReader)  # no broker: only the attributes end_offsets reads
    reader._consumer, reader.topic, reader.partitions = fake, "livectx.models", [0]
    return reader


def test_the_end_of_a_new_registry_topic_is_read_once_its_leader_is_elected() -> None:
    from confluent_kafka import KafkaError

    fake = _ElectingConsumer(failures=2, code=KafkaError.NOT_LEADER_FOR_PARTITION)
    assert _reader(fake).end_offsets(timeout_s=5.0) == {0: 7} and fake.calls == 3


def test_a_lasting_or_non_transient_watermark_error_is_one_registry_error() -> None:
    from confluent_kafka import KafkaError

    with pytest.raises(ModelRegistryError, match=r"cannot read the end of livectx\.models"):
        _reader(_ElectingConsumer(failures=10**6, code=KafkaError.LEADER_NOT_AVAILABLE)).end_offsets(timeout_s=0.3)
    fake = _ElectingConsumer(failures=1, code=KafkaError.TOPIC_AUTHORIZATION_FAILED)
    with pytest.raises(ModelRegistryError, match="Topic authorization failed"):
        _reader(fake).end_offsets(timeout_s=5.0)
    assert fake.calls == 1
