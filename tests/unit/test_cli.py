"""The CLI's contract: fast help without heavy imports, one readable line for bad input."""

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from livectx.cli import cli

HEAVY = (
    "feast", "pandas", "torch", "quixstreams", "confluent_kafka", "pyarrow", "duckdb", "psycopg",
    "pinecone", "sentence_transformers", "mcp", "agents", "langchain_core",
)  # fmt: skip


def _imported_by(args: list[str]) -> set[str]:
    code = (
        "import sys, json\n"
        "from livectx.cli import cli\n"
        f"try:\n    cli.main(args={args!r}, prog_name='livectx')\n"
        "except SystemExit:\n    pass\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["stack", "--help"],
        ["schemas", "check", "--help"],
        ["ingest", "run", "features", "--help"],
        ["ingest", "run", "embeddings", "--help"],
        ["memory", "search", "--help"],
        ["agents", "run", "router", "--help"],
        ["agents", "run", "fraud", "--help"],
        ["serve", "--help"],
        ["mcp", "--help"],
        ["agents", "ask", "--help"],
        ["bench", "--help"],
        ["demo", "attack", "--help"],
        ["produce", "--help"],
    ],
)
def test_help_imports_no_heavy_library(args: list[str]) -> None:
    assert _imported_by(args) == set()


def test_every_command_group_is_listed() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in (
        "stack",
        "doctor",
        "topics",
        "schemas",
        "produce",
        "feast",
        "ingest",
        "bench",
        "demo",
        "features",
        "memory",
        "agents",
        "serve",
        "mcp",
    ):
        assert name in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["produce", "--scenario", "nope", "--count", "1"], "unknown generator 'nope'"),
        (["produce", "--scenario", "fraud"], "give --count N"),
        (["produce", "--scenario", "fraud", "--duration", "5"], "--duration needs --rate"),
        (["produce", "--scenario", "fraud", "--count", "1", "--start", "yesterday"], "not an ISO-8601 time"),
        (["bench", "nope"], "unknown benchmark 'nope'"),
        (["demo", "attack", "--scale", "5"], "5.0 is not in the range"),
        (["bench", "attack", "-o", "speed=2"], "benchmark attack has no option 'speed=2'"),
        (["stack", "up", "zookeeper"], "'zookeeper' is not one of"),
        (["memory", "search", "refund", "--since", "yesterday"], "not an ISO-8601 time"),
        (["memory", "search", "refund", "--since", "2026-11-26T10:00:00"], "has no timezone"),
        (["ingest", "run", "embeddings", "--topic", "livectx.clicks"], "livectx.clicks not a memory view"),
        (["ingest", "run", "embeddings", "--batch-size", "0"], "0 is not in the range"),
        (["agents", "run", "fraud", "--model", "/nonexistent.joblib"], "does not exist"),
        (["agents", "run", "fraud", "--threshold", "2"], "2.0 is not in the range"),
        (["serve", "--port", "0"], "0 is not in the range"),
        (["mcp", "--transport", "sse"], "'sse' is not one of"),
        (["features", "get", "p1", "--view", "nope"], "unknown feature view 'nope'"),
        (["ingest", "run", "features", "--views", "nope"], "unknown stream feature view(s) nope"),
    ],
)
def test_bad_arguments_get_one_readable_line_not_a_traceback(args: list[str], message: str) -> None:
    result = subprocess.run([sys.executable, "-m", "livectx", *args], capture_output=True, text=True)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_setting_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "livectx", "config"],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "LIVECTX_STACK_REDIS_PORT": "99999999"},
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: invalid setting")
    assert "Traceback" not in result.stderr


def test_bench_list_names_both_baselines() -> None:
    result = CliRunner().invoke(cli, ["bench", "--list"])
    assert result.exit_code == 0
    assert "kafka" in result.output and "online-read" in result.output
