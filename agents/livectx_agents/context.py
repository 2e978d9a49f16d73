"""``get_context``: online features + similar items + freshness, in one call, within a latency budget.

The feature read (the fast path over Feast's Redis layout, or Feast's SDK) and the vector search (query
embedding + top-k) run concurrently, each with its own circuit breaker. Each part may use what is left of
the call's budget, unless its timeout is set explicitly (then the smaller of the two): a call with a large
budget gives its parts the time, a small budget still returns on time. When a part times out, fails or
has its breaker open, the call still returns on time: with the declared feature defaults or no similar
items, and a ``degraded`` reason per missing part. It raises only when asked to (``strict=True``).

This module wires the client; the answer's shape is :mod:`.context_answer`, the budget rules
:mod:`.context_budget`, the dependencies :mod:`.context_sources`. Their public names (``Context``,
``ContextConfig``, ``bounded_redis_client``...) are re-exported here, where callers import them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import numpy as np

from livectx.errors import LivectxError
from livectx.features.spec import FeatureGroup
from livectx.settings import Settings
from livectx.vectors.records import VectorFilter
from livectx_agents.breaker import CircuitBreaker
from livectx_agents.context_answer import Context as Context
from livectx_agents.context_answer import ContextUnavailable as ContextUnavailable
from livectx_agents.context_answer import _index_freshness as _index_freshness
from livectx_agents.context_answer import _record_metrics as _record_metrics
from livectx_agents.context_answer import _shape_features as _shape_features
from livectx_agents.context_budget import ContextConfig as ContextConfig
from livectx_agents.context_budget import collect_parts, submit_part
from livectx_agents.context_sources import ContextSources as ContextSources
from livectx_agents.context_sources import Embed, IndexStatus, ReadFeatures, Search
from livectx_agents.context_sources import _no_embed as _no_embed
from livectx_agents.context_sources import _no_features as _no_features
from livectx_agents.context_sources import _no_search as _no_search
from livectx_agents.context_sources import bounded_redis_client as bounded_redis_client
from livectx_agents.context_sources import feast_sdk_reader as feast_sdk_reader

log = logging.getLogger(__name__)

#: The default config (frozen, so one instance serves every default argument).
DEFAULT_CONFIG = ContextConfig()


class ContextClient:
    """The synchronous client. Thread-safe; create one per process and reuse it."""

    def __init__(
        self,
        read_features: ReadFeatures,
        search: Search,
        embed: Embed,
        index_status: IndexStatus | None = None,
        config: ContextConfig = DEFAULT_CONFIG,
        clock: Callable[[], float] = time.time,
        inline_features: bool = False,
        services: Mapping[str, Sequence[FeatureGroup]] | None = None,
        memory_sources: Mapping[str, str] | None = None,
    ) -> None:
        if services is None or memory_sources is None:
            from livectx.repo import current_repo

            repo = current_repo()
            if services is None:
                services = {name: repo.service_groups(name) for name in repo.services}
            if memory_sources is None:
                memory_sources = {name: view.schema for name, view in repo.memory.items()}
        #: Feature service -> its views, and memory view -> its source: the repo's declarations.
        self.services = {name: list(groups) for name, groups in services.items()}
        self.memory_sources = dict(memory_sources)
        self._sources = ContextSources(read_features, search, embed, index_status)
        self.config = config
        self._clock = clock
        # The fast path is a sub-millisecond Redis round trip with socket timeouts: the caller runs it while
        # the vector search is in flight, saving a thread hand-off (~0.3 ms here) on every call.
        self._inline_features = inline_features
        self.breakers = {
            name: CircuitBreaker(name, config.failure_threshold, config.reset_after_s)
            for name in ("features", "vectors")
        }
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="livectx-context")
        self.warm: dict[str, Any] | None = None  # the warm-up report, once :meth:`warm_up` ran
        #: How much faster than the clock the produced event time ran (``livectx produce --speedup``): ages
        #: are event-time ages, and ``freshness["event_time_speedup"]`` says so when it is not 1.
        self.event_time_speedup = 1.0

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        config: ContextConfig = DEFAULT_CONFIG,
        fast_path: bool = True,
        features: bool = True,
        vectors: bool = True,
    ) -> ContextClient:
        """Wired to the configured stores: the fast read path (or Feast's SDK), the vector store, the model.
        ``features=False`` / ``vectors=False`` leave a part out (agents that need only one)."""
        from livectx.redis_client import redis_client
        from livectx.vectors import open_vector_store
        from livectx.vectors.embedder import Embedder
        from livectx.vectors.watermark import IndexWatermark

        read_features: ReadFeatures
        if not features:
            read_features = _no_features
        elif fast_path:
            from livectx.features.online_reader import OnlineFeatureReader

            read_features = OnlineFeatureReader.from_settings(settings, bounded_redis_client(settings, config)).read
        else:
            read_features = feast_sdk_reader(settings)
        inline = features and fast_path
        from livectx.repo import current_repo

        repo = current_repo(settings)
        declared = {
            "services": {name: repo.service_groups(name) for name in repo.services},
            "memory_sources": {name: view.schema for name, view in repo.memory.items()},
        }
        if not vectors:
            client = cls(read_features, _no_search, _no_embed, None, config, inline_features=inline, **declared)
        else:
            store = open_vector_store(settings)
            embedder = Embedder.from_settings(settings).load()
            watermark = IndexWatermark(redis_client(settings), settings.vector.index)
            client = cls(
                read_features,
                lambda vector, k, where: store.search(vector, k, where),
                lambda text: embedder.embed([text])[0],
                watermark.status,
                config,
                inline_features=inline,
                **declared,
            )
        from livectx import timebase

        client.event_time_speedup = timebase.speedup(settings)
        return client

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def warm_up(self) -> dict[str, Any]:
        """Do once what the first call would otherwise pay for: the embedding model's first pass (seconds on a
        CPU, while the model's kernels load), the vector store's and Redis's first connections. Returns each
        part's time in ms, or its error; never raises (a dependency that is down degrades calls as usual).
        Servers call it before accepting calls; :attr:`warm` then holds the report."""
        parts: dict[str, Callable[[], Any]] = {}
        sources = self._sources
        if sources.has_vectors:
            parts["vectors"] = lambda: sources.similar("warm up", None, 1, None)
        if sources.has_features:
            parts["features"] = lambda: [sources.read_features(["livectx-warm-up"], s) for s in self.services]
        report: dict[str, Any] = {}
        for name, run in parts.items():
            began = time.perf_counter()
            try:
                run()
                report[name] = {"ms": round((time.perf_counter() - began) * 1000, 1)}
            except Exception as exc:
                report[name] = {"error": f"{type(exc).__name__}: {exc}"}
                log.warning("warming up %s failed: %s", name, exc)
        self.warm = report
        return report

    def default_service(self) -> str:
        """The feature service a call that names none reads: the repo's only one."""
        if len(self.services) != 1:
            raise LivectxError(
                f"name a feature service; the repo declares: {', '.join(sorted(self.services)) or 'none'}"
            )
        return next(iter(self.services))

    def get_context(
        self,
        entities: Sequence[str],
        feature_service: str | None = None,
        *,
        memory_view: str | None = None,
        query_text: str | None = None,
        query_vector: Sequence[float] | np.ndarray | None = None,
        top_k: int = 10,
        filters: VectorFilter | None = None,
        budget_ms: float | None = None,
        strict: bool = False,
    ) -> Context:
        started = time.perf_counter()
        budget_ms = budget_ms if budget_ms is not None else self.config.budget_ms
        if feature_service is None:
            feature_service = self.default_service() if entities else ""
        if entities and feature_service not in self.services:
            raise LivectxError(f"unknown feature service {feature_service!r}; known: {', '.join(self.services)}")
        if memory_view is not None:
            if memory_view not in self.memory_sources:
                known = ", ".join(sorted(self.memory_sources)) or "none"
                raise LivectxError(f"unknown memory view {memory_view!r}; known: {known}")
            base = filters or VectorFilter()
            filters = replace(base, sources=(*base.sources, self.memory_sources[memory_view]))
        if query_text is not None and query_vector is not None:
            raise LivectxError("give query_text or query_vector, not both")
        entities = list(entities)
        wants_vectors = query_text is not None or query_vector is not None
        degraded: list[str] = []
        timings: dict[str, float] = {}
        parts: dict[str, Future[Any]] = {}
        # The vector search (model + index) is the slow part: send it first, then read features meanwhile.
        if wants_vectors:
            parts["vectors"] = submit_part(
                self._pool, "vectors", self.breakers["vectors"], degraded, timings,
                self._sources.similar, query_text, query_vector, top_k, filters,
            )  # fmt: skip
        if entities:
            parts["features"] = submit_part(
                self._pool, "features", self.breakers["features"], degraded, timings,
                self._sources.read_features, entities, feature_service,
                inline_limit_ms=self.config.part_limit_ms("features", budget_ms) if self._inline_features else None,
            )  # fmt: skip
        results = collect_parts(parts, self.breakers, self.config, budget_ms, started, degraded)
        now_ms = self._clock() * 1000
        groups = self.services.get(feature_service, [])
        features, ages, newest = _shape_features(entities, groups, results.get("features"), now_ms)
        similar, index_status = results.get("vectors", ([], None))
        context = Context(
            entities=entities,
            features=features,
            similar=similar,
            freshness={
                "features": ages,
                "newest_event_ms": newest,
                "vector_index": _index_freshness(index_status, now_ms),
                **({"event_time_speedup": self.event_time_speedup} if self.event_time_speedup != 1 else {}),
            },
            degraded=degraded,
            elapsed_ms=(time.perf_counter() - started) * 1000,
            timings_ms=dict(timings),  # a timed-out part may still write its timing later
        )
        _record_metrics(context, self.breakers)
        if strict and degraded:
            raise ContextUnavailable("; ".join(degraded))
        return context


class AsyncContextClient:
    """The asyncio twin: same call, same budget semantics, awaitable (the parts run in worker threads)."""

    def __init__(self, client: ContextClient) -> None:
        self._client = client

    @classmethod
    def from_settings(cls, settings: Settings, config: ContextConfig = DEFAULT_CONFIG) -> AsyncContextClient:
        return cls(ContextClient.from_settings(settings, config))

    @property
    def sync(self) -> ContextClient:
        return self._client

    async def get_context(self, entities: Sequence[str], feature_service: str | None = None, **kwargs: Any) -> Context:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, lambda: self._client.get_context(entities, feature_service, **kwargs))

    def close(self) -> None:
        self._client.close()
