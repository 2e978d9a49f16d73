"""``livectx mcp`` with the SDK's real MCP client, over stdio and streamable HTTP, against the real Redis,
pgvector and embedding model: every tool listed and called, get_context through MCP equal to the direct
call, bad arguments as tool errors a model can read, the feature-service resources."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from livectx_agents.context import ContextClient
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from livectx.settings import Settings
from tests.integration.test_context import GENEROUS, TICKETS, _client, _free_port, _push_user, memory  # noqa: F401

TOOLS = {"get_context", "search_memory", "get_features", "list_feature_services", "wait_until_fresh"}


def _env() -> dict[str, str]:
    """What the server process needs of this one: the livectx settings (the test's vector index) and paths."""
    return {k: v for k, v in os.environ.items() if k.startswith(("LIVECTX_", "PYTHON", "HOME", "PATH", "XDG_"))}


def _structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    return result.structured_content


async def _exercise(client: Client, direct: ContextClient, user: str, event_ms: int) -> None:
    listed = await client.list_tools()
    assert {t.name for t in listed.tools} == TOOLS
    schema = next(t for t in listed.tools if t.name == "get_context").input_schema
    assert {"entities", "query", "budget_ms", "memory_view"} <= set(schema["properties"])
    assert all(t.description for t in listed.tools)

    services = _structured(await client.call_tool("list_feature_services", {}))
    assert "fraud_features" in services["feature_services"] and "tickets_memory" in services["memory_views"]

    args = {"entities": [user], "feature_service": "fraud_features", "query": TICKETS[1][2], "top_k": 3}
    via_mcp = _structured(await client.call_tool("get_context", {**args, "budget_ms": 3000}))
    expected = direct.get_context([user], "fraud_features", query_text=TICKETS[1][2], top_k=3, budget_ms=3000)
    assert via_mcp["degraded"] == [] == expected.degraded
    assert via_mcp["features"] == expected.features and via_mcp["features"][user]["txn_count_5m"] == 7
    assert [(h["id"], round(h["score"], 5)) for h in via_mcp["similar"]] == [
        (h.id, round(h.score, 5)) for h in expected.similar
    ]

    found = _structured(await client.call_tool("search_memory", {"query": "refund", "categories": ["shipping"]}))
    assert {h["id"] for h in found["similar"]} == {"support_ticket:t2", "support_ticket:t4"}
    features = _structured(
        await client.call_tool("get_features", {"entities": [user, "nobody"], "feature_service": "fraud_features"})
    )
    assert features["features"]["nobody"]["txn_count_5m"] == 0 and features["degraded"] == []
    wait = {"entities": [user], "feature_service": "fraud_features"}
    fresh = _structured(await client.call_tool("wait_until_fresh", {**wait, "after": event_ms}))
    assert fresh["fresh"] and fresh["behind"] == []
    stale = _structured(await client.call_tool("wait_until_fresh", {**wait, "after": event_ms + 1, "timeout_ms": 50}))
    assert not stale["fresh"] and stale["behind"] == [user]

    resource = await client.read_resource("livectx://feature-services/fraud_features")
    assert json.loads(resource.contents[0].text)["entity_key"] == "user_id"

    # Bad arguments: tool errors with a readable message, no traceback, and the server keeps serving.
    for bad, words in (
        ({}, "nothing to fetch"),
        ({"entities": [user], "feature_service": "nope"}, "unknown feature service 'nope'"),
        ({"entities": [user], "feature_service": "fraud_features", "top_k": 0}, "top_k"),
    ):
        result = await client.call_tool("get_context", bad)
        text = " ".join(c.text for c in result.content)
        assert result.is_error and words in text and "Traceback" not in text
    # ... and an unnamed service of a repo with several: the names to choose from
    unnamed = await client.call_tool("get_features", {"entities": [user]})
    assert unnamed.is_error and "name a feature service; the repo declares: card_features" in unnamed.content[0].text
    assert _structured(await client.call_tool("get_features", {**wait}))["degraded"] == []


@pytest.fixture
def served(memory: Settings, feature_store, embedder):  # type: ignore[no-untyped-def]  # noqa: F811
    user = f"mcp-{uuid.uuid4().hex[:8]}"
    event_ms = int(time.time() * 1000) - 1500
    _push_user(feature_store, user, event_ms)
    direct = _client(memory, embedder, GENEROUS)
    yield direct, user, event_ms
    direct.close()


def test_mcp_over_stdio_lists_and_calls_every_tool(served) -> None:  # type: ignore[no-untyped-def]
    direct, user, event_ms = served
    server = StdioServerParameters(command=sys.executable, args=["-m", "livectx", "mcp"], env=_env(), cwd=Path.cwd())

    async def main() -> None:
        async with Client(server, read_timeout_seconds=120) as client:
            await _exercise(client, direct, user, event_ms)

    asyncio.run(main())


def test_mcp_over_streamable_http_lists_and_calls_every_tool(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    direct, user, event_ms = served
    port = _free_port()
    log = (tmp_path / "mcp.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "livectx", "mcp", "--transport", "http", "--port", str(port)],
        env=_env(), stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip

    url = f"http://127.0.0.1:{port}/mcp"

    async def main() -> None:
        deadline = time.monotonic() + 120
        while True:  # the server binds once warmed up: go on as soon as it answers
            try:
                async with Client(url) as probe:
                    await probe.list_tools()
                break
            except Exception:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)  # polling the server's start, with a deadline
        async with Client(url, read_timeout_seconds=120) as client:
            await _exercise(client, direct, user, event_ms)

    try:
        asyncio.run(main())
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
    assert "Traceback" not in (tmp_path / "mcp.log").read_text()
