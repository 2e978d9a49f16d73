"""The model registry on the real broker: the CLI end to end, and what survives compaction.

Compaction is made to happen, not hoped for: the test's own compacted topic rolls a segment every 100 ms,
its cleaner considers it at 1% dirty, and more records are produced (rolling segments) until a raw re-read
shows the older records of the ``fraud`` key gone. Then a fresh view, and a fresh agent process, must
still find the latest version, while every ``fraud@<version>`` record stays resolvable.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from livectx import serde
from livectx.events import Decision
from livectx.kafka import producer
from livectx.models import RegistryView, registry
from livectx.models.reader import read_all as read_registry
from livectx.models.version import active_key, encode
from livectx.offsets import end_offsets
from livectx.settings import Settings

from ..unit.test_model_registry import constant_model
from .kafka_helpers import create_topic, read_all
from .test_fraud_agent_live_switch import models_topic, payment, send


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, stack) -> Settings:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LIVECTX_TIER_URL", str(tmp_path / "tier"))
    return Settings()


def test_cli_register_list_show_activate_retire(
    isolated: Settings, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from livectx import cli as root

    monkeypatch.setitem(root.CORE_COMMANDS, "models", "livectx.cli.models:models")
    topic = models_topic(isolated, f"test.{unique}.models")
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        service = ["--service", "fraud_features"] if args[0] == "register" else []
        result = runner.invoke(root.cli, ["models", *args, *service, "--topic", topic])
        return result.exit_code, result.output

    v1 = constant_model(tmp_path / "v1.joblib", 0.1)
    code, out = run(
        "register", "--name", "fraud", "--version", "v1", "--artifact", str(v1),
        "--metrics-json", '{"precision": 0.97, "recall": 0.9}', "--config-json", '{"threshold": 0.7}',
        "--trained-from", "2026-01-01", "--trained-to", "2026-01-08",
    )  # fmt: skip
    assert code == 0, out
    assert "fraud:v1 registered and active" in out
    code, out = run("register", "--name", "fraud", "--version", "v2", "--artifact", str(v1), "--no-activate")
    assert code == 0 and "fraud:v2 registered:" in out, out

    code, out = run("register", "--name", "fraud", "--version", "v1", "--artifact", str(v1))
    assert code == 1 and out.strip() == "error: fraud:v1 is already registered (versions are immutable): " + (
        "register a new version"
    ), out

    code, out = run("show", "fraud")
    shown = json.loads(out)
    assert code == 0 and shown["version"] == "v1", "v2 was registered without activation"
    assert shown["metrics"] == {"precision": 0.97, "recall": 0.9} and shown["config"] == {"threshold": 0.7}
    assert shown["training_start"].startswith("2026-01-01T00:00:00") and shown["feature_service"] == "fraud_features"
    stored = Path(shown["artifact_uri"])
    assert (
        stored.is_relative_to(tmp_path / "tier" / "_models" / "fraud" / "v1") and stored.read_bytes() == v1.read_bytes()
    )

    code, out = run("list", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [(r["version"], r["active"]) for r in rows] == [("v1", True), ("v2", False)]

    assert run("activate", "fraud:v2")[0] == 0
    assert json.loads(run("show", "fraud")[1])["version"] == "v2"
    code, out = run("retire", "fraud")
    assert code == 0 and "fraud retired (was fraud:v2)" in out
    code, out = run("show", "fraud")
    assert code == 1 and "model fraud has no active version (never registered or retired); its versions: " in out
    assert json.loads(run("show", "fraud:v1")[1])["version"] == "v1", "retired versions stay resolvable"
    code, out = run("retire", "fraud")
    assert code == 1 and "no active version" in out
    code, out = run("show", "fraud:v9")
    assert code == 1 and "fraud:v9 is not registered; known: fraud:v1, fraud:v2" in out
    missing = runner.invoke(root.cli, ["models", "list", "--topic", f"test.{unique}.missing"])
    assert missing.exit_code == 1
    assert (
        missing.output
        == f"error: model registry topic test.{unique}.missing does not exist: run `livectx topics apply`\n"
    )


def test_latest_version_survives_compaction_for_a_new_view_and_a_new_agent(
    isolated: Settings, unique: str, tmp_path: Path
) -> None:
    topic = models_topic(
        isolated,
        f"test.{unique}.models",
        **{"segment.ms": "100", "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "100"},
    )
    for version, share in (("v1", 0.1), ("v2", 0.1), ("v3", 0.9)):
        registry.register(
            isolated,
            "fraud",
            version,
            constant_model(tmp_path / f"{version}.joblib", share),
            feature_service="fraud_features",
            topic=topic,
        )
    registry.register(isolated, "gone", "v1", tmp_path / "v1.joblib", feature_service="fraud_features", topic=topic)
    registry.retire(isolated, "gone", topic=topic)
    filler = registry.register(
        isolated, "filler", "v1", tmp_path / "v1.joblib", feature_service="fraud_features", topic=topic
    )
    # The cleaner may compact while we look (segments roll every 100 ms), so what was written is proven by
    # the log end offset, which compaction never moves: 2 records per registration, 1 tombstone.
    assert end_offsets(isolated, [topic]) == {(topic, 0): 3 * 2 + 2 + 1 + 2}

    # Roll segments (a record after segment.ms) until the cleaner has compacted the fraud key.
    value, headers = encode(filler)
    p = producer(isolated)
    started = time.monotonic()
    deadline = started + 90
    keys = _keys(isolated, topic)
    while (keys[b"fraud"] > 1 or keys[b"gone"] > 0) and time.monotonic() < deadline:
        p.produce(topic, key=active_key("filler"), value=value, headers=headers)
        assert p.flush(10) == 0
        time.sleep(0.5)  # pacing the probe; the loop's condition is the re-read below
        keys = _keys(isolated, topic)
    assert keys[b"fraud"] == 1, f"the broker's cleaner did not compact within 90 s: {keys}"
    print(f"compacted after {time.monotonic() - started:.1f}s: {dict(keys)}")
    assert keys[b"gone"] == 0, "the tombstone outlived delete.retention.ms"
    assert all(keys[f"fraud@{v}".encode()] == 1 for v in ("v1", "v2", "v3")), keys
    assert keys[b"gone@v1"] == 1

    with RegistryView(isolated, topic) as view:
        assert view.active("fraud").version == "v3"  # type: ignore[union-attr]
        assert view.active("gone") is None
        assert view.version("fraud", "v1") is not None, "every version stays resolvable after compaction"

    # A new agent process, started after compaction, decides with the latest version.
    txns = create_topic(isolated, f"test.{unique}.transactions")
    decisions = create_topic(isolated, f"test.{unique}.decisions")
    txn = payment(f"{unique}-late", 5)
    send(isolated, txns, txn)
    command = [
        sys.executable, "-m", "livectx", "agents", "run", "fraud", "--model-name", "fraud", "--models-topic", topic,
        "--group", f"test-{unique}-fraud", "--source-topic", txns, "--decisions-topic", decisions, "--until-caught-up",
    ]  # fmt: skip
    env = {**os.environ, "LIVECTX_TIER_URL": str(tmp_path / "tier")}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "fraud agent (fraud:v3)" in done.stdout
    (record,) = read_all(isolated, decisions, 1)
    decision = serde.decode(Decision, record.value())
    assert (decision.model, decision.action) == ("fraud:v3", "decline")  # type: ignore[attr-defined]


def _keys(settings: Settings, topic: str) -> Counter[bytes]:
    """How many records each key has in the topic right now (a raw re-read, tombstones included)."""
    counts: Counter[bytes] = Counter()
    read_registry(settings, topic, lambda m: counts.update([m.key()]), timeout_s=30)
    return counts


def test_view_catches_up_at_start_then_waits_for_changes(isolated: Settings, unique: str, tmp_path: Path) -> None:
    from livectx.models import ModelRegistryError, RegistryTimeout

    with pytest.raises(ModelRegistryError, match="does not exist: run `livectx topics apply`"):
        RegistryView(isolated, f"test.{unique}.missing").start()
    topic = models_topic(isolated, f"test.{unique}.models")
    artifact = constant_model(tmp_path / "m.joblib", 0.5)
    for version in ("v1", "v2", "v3"):
        registry.register(isolated, "fraud", version, artifact, feature_service="fraud_features", topic=topic)
    seen: list[str | None] = []
    with RegistryView(isolated, topic) as view:
        assert view.active("fraud").version == "v3", "start() returns only once the history is read"  # type: ignore[union-attr]
        view.follow("fraud", lambda v: seen.append(v.version if v else None))
        registry.register(isolated, "fraud", "v4", artifact, feature_service="fraud_features", topic=topic)
        assert view.wait_for("fraud", "v4", timeout_s=30).version == "v4"  # type: ignore[union-attr]
        registry.retire(isolated, "fraud", topic=topic)
        assert view.wait_for("fraud", None, timeout_s=30) is None
        with pytest.raises(RegistryTimeout, match=r"fraud did not become v9 within 0.2s \(active: none\)"):
            view.wait_for("fraud", "v9", timeout_s=0.2)
    assert seen == ["v3", "v4", None], "followers get the state at follow(), then each change in order"
