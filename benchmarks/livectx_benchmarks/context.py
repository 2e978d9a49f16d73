"""``context``: the agent's one call against its parts, and the fast feature read path against its floor.

All in one run, on the same data:
1. ``fraud_features`` (5 views) for N users is pushed through Feast; 20,000 clustered 384-d vectors are
   bulk-loaded into a pgvector index.
2. Parts alone: the fast-path feature read for one user (``features_p99_ms``) and a top-10 vector search
   (``vectors_p99_ms``), then the unified ``get_context`` doing both concurrently (``context_p99_ms``).
   Target: context p99 <= 1.2x the slower part's p99.
3. Read paths for 1 and 100 users: the fast path (``fastpath_p50_ms_*``), Feast's SDK
   ``get_online_features`` (``feast_p50_ms_*``) and a raw redis-py pipelined HMGET of exactly the same
   keys and fields (``raw_p50_ms_*``, the floor). Target: fast path p50 <= 1.3x raw.
4. MCP: the same ``get_context`` call through ``livectx mcp``'s tool over streamable HTTP with the SDK's
   client (``mcp_p50_ms``/``mcp_p99_ms``), interleaved with the direct call (``mcp_direct_p50_ms``/
   ``mcp_direct_p99_ms``): what the protocol, JSON and the HTTP hop add.
Queries use pre-computed vectors, so the figures measure retrieval, not the model (about 8 ms per query
text on this CPU, which ``get_context(query_text=...)`` adds inside the vector part).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import numpy as np
from livectx_agents.context import ContextClient, ContextConfig, bounded_redis_client

from livectx.features.online_reader import OnlineFeatureReader
from livectx.redis_client import redis_client
from livectx.repo import current_repo
from livectx.settings import Settings
from livectx.vectors.pgvector_store import PgVectorStore
from livectx.vectors.records import VectorRecord
from livectx_benchmarks.embeddings import clustered_unit_vectors
from livectx_benchmarks.feast_rows import bench_users, write_rows
from livectx_benchmarks.result import BenchResult, percentile
from livectx_benchmarks.scratch_keys import unlink_keys

SERVICE = "fraud_features"
USERS = 2000
VECTORS = 20_000
ITERATIONS = 2000


def run(settings: Settings, scale: float = 1.0) -> BenchResult:
    store, users, now = bench_users(settings, USERS)
    rng = np.random.default_rng(5)
    for group in current_repo().service_groups(SERVICE):
        columns = {name: rng.integers(0, 1000, len(users)).tolist() for name in (f.name for f in group.features)}
        stamps = {name: [int(now.timestamp() * 1000)] * len(users) for name in group.metadata_fields}
        write_rows(store, group.name, users, now, {**columns, **stamps})
    client = redis_client(settings)
    reader = OnlineFeatureReader.from_settings(settings, client)
    plan = reader.plan(SERVICE)
    assert reader.read(users[:1], SERVICE)["txn_count_5m"][0] is not None, "the fast path found no Feast data"

    index = f"bench_ctx_{uuid.uuid4().hex[:8]}"
    vectors_store = PgVectorStore.from_settings(settings, index=index)
    iterations = max(100, int(ITERATIONS * scale))
    try:
        data = clustered_unit_vectors(max(2000, int(VECTORS * scale)) + iterations, 384, rng)
        corpus, queries = data[: len(data) - iterations], data[len(data) - iterations :]
        vectors_store.ensure_index("synthetic-clustered", 384)
        vectors_store.bulk_load(
            VectorRecord(
                id=str(i), vector=v, text=f"item {i}", source="document", tenant="t", category=None,
                event_ms=i, topic="bench", partition=0, offset=i,
            )
            for i, v in enumerate(corpus)
        )  # fmt: skip
        config = ContextConfig(budget_ms=1000, features_timeout_ms=1000, vectors_timeout_ms=1000)
        # Wired as ContextClient.from_settings wires it: the fast path on the calling thread.
        context = ContextClient(
            OnlineFeatureReader.from_settings(settings, bounded_redis_client(settings, config)).read,
            lambda v, k, where: vectors_store.search(v, k, where),
            lambda _text: queries[0],
            None,
            config,
            inline_features=True,
        )
        one = [[users[i % len(users)]] for i in range(iterations)]
        mcp_figures = _mcp_round_trips(context, one, max(50, iterations // 4))
        # Interleaved (part, part, whole; call after call) so that machine noise hits all three alike.
        features_ms, vectors_ms, context_ms = _interleaved(
            [
                lambda i: reader.read(one[i], SERVICE),
                lambda i: vectors_store.search(queries[i], 10),
                lambda i: _check(context.get_context(one[i], SERVICE, query_vector=queries[i], top_k=10)),
            ],
            iterations,
        )
        context.close()

        feast_service = store.get_feature_service(SERVICE)
        figures: dict[str, float] = {
            "context_p50_ms": percentile(context_ms, 50),
            "context_p99_ms": percentile(context_ms, 99),
            "features_p99_ms": percentile(features_ms, 99),
            "vectors_p99_ms": percentile(vectors_ms, 99),
        }
        figures.update(mcp_figures)
        figures["context_over_slower_part_p99"] = figures["context_p99_ms"] / max(
            figures["features_p99_ms"], figures["vectors_p99_ms"]
        )
        # The floor: exactly the keys and hash fields the fast path reads, one pipelined HMGET each.
        by_user = {
            u: [(layout.redis_key(u), [*(layout.fields[c] for c in cols), layout.ts_field]) for layout, cols in plan]
            for u in users
        }
        for size in (1, 100):
            batches = [[users[(i * size + j) % len(users)] for j in range(size)] for i in range(iterations // 2)]

            def raw(i: int, batches: list[list[str]] = batches) -> object:
                pipe = client.pipeline(transaction=False)
                for user in batches[i]:
                    for key, fields in by_user[user]:
                        pipe.hmget(key, fields)
                return pipe.execute()

            rows = [[{"user_id": u} for u in batch] for batch in batches]
            raw_ms, fast_ms, feast_ms = _interleaved(
                [
                    raw,
                    lambda i, b=batches: reader.read(b[i], SERVICE),
                    lambda i, r=rows: store.get_online_features(features=feast_service, entity_rows=r[i]).to_dict(),
                ],
                len(batches),
            )
            figures[f"raw_p50_ms_{size}"] = percentile(raw_ms, 50)
            figures[f"fastpath_p50_ms_{size}"] = percentile(fast_ms, 50)
            figures[f"feast_p50_ms_{size}"] = percentile(feast_ms, 50)
            figures[f"fastpath_over_raw_p50_{size}"] = (
                figures[f"fastpath_p50_ms_{size}"] / figures[f"raw_p50_ms_{size}"]
            )
    finally:
        vectors_store.drop()
        vectors_store.close()
        unlink_keys(client, [layout.redis_key(u) for u in users for layout, _ in plan])
    result = BenchResult("context")
    result.figures = figures
    result.notes.append(
        f"service {SERVICE} ({len(plan)} views), {USERS} users, {len(corpus)} vectors (HNSW), {iterations} calls"
    )
    return result


def _mcp_round_trips(context: ContextClient, entities: list[list[str]], iterations: int) -> dict[str, float]:
    """The tool call over streamable HTTP (a uvicorn server in a thread, the SDK's client) against the direct
    call, interleaved call after call."""
    import asyncio
    import socket
    import threading

    import uvicorn
    from livectx_agents.tools.context_tools import ContextTools
    from livectx_agents.tools.mcp_server import build_server
    from mcp import Client

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = build_server(ContextTools(context)).streamable_http_app(json_response=True)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    args = {"feature_service": SERVICE, "query": "q", "top_k": 10, "budget_ms": 1000}

    async def measure() -> tuple[list[float], list[float]]:
        while not server.started:
            await asyncio.sleep(0.01)  # the server thread's start-up
        direct_ms: list[float] = []
        mcp_ms: list[float] = []
        async with Client(f"http://127.0.0.1:{port}/mcp") as client:
            for i in range(iterations + 20):  # the first 20 warm both paths up
                began = time.perf_counter()
                _check(context.get_context(entities[i % len(entities)], SERVICE, query_text="q", top_k=10))
                direct = (time.perf_counter() - began) * 1000
                began = time.perf_counter()
                result = await client.call_tool("get_context", {"entities": entities[i % len(entities)], **args})
                took = (time.perf_counter() - began) * 1000
                if result.is_error or result.structured_content["degraded"]:
                    raise RuntimeError(f"MCP get_context failed during the benchmark: {result.content}")
                if i >= 20:
                    direct_ms.append(direct)
                    mcp_ms.append(took)
        return direct_ms, mcp_ms

    try:
        direct_ms, mcp_ms = asyncio.run(measure())
    finally:
        server.should_exit = True
        thread.join(10)
    return {
        "mcp_p50_ms": percentile(mcp_ms, 50),
        "mcp_p99_ms": percentile(mcp_ms, 99),
        "mcp_direct_p50_ms": percentile(direct_ms, 50),
        "mcp_direct_p99_ms": percentile(direct_ms, 99),
        "mcp_over_direct_p50": percentile(mcp_ms, 50) / percentile(direct_ms, 50),
    }


def _check(context: object) -> object:
    if getattr(context, "degraded", None):
        raise RuntimeError(f"context degraded during the benchmark: {context.degraded}")  # type: ignore[attr-defined]
    return context


def _interleaved(calls: list[Callable[[int], object]], iterations: int) -> list[list[float]]:
    for i in range(min(20, iterations)):
        for call in calls:
            call(i)
    samples: list[list[float]] = [[] for _ in calls]
    for i in range(iterations):
        for call, out in zip(calls, samples, strict=True):
            began = time.perf_counter()
            call(i)
            out.append((time.perf_counter() - began) * 1000)
    return samples
