"""``get_context``: online features + similar items + freshness, in one call, within a latency budget.

The feature read (the fast path over Feast's Redis layout, or Feast's SDK) and the vector search (query
embedding + top-k) run concurrently, each with its own circuit breaker. Each part may use what is left of
the call's budget, unless its timeout is set explicitly (then the smaller of the two): a call with a large
budget gives its parts the time, a small budget still returns on time. When a part times out, fails or
has its breaker open, the call still returns on time: with the declared feature defaults or no similar
items, and a ``degraded`` reason per missing part. It raises only when asked to (``strict=True``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from livectx import prometheus as prom
from livectx.errors import LivectxError
from livectx.features.spec import FeatureGroup
from livectx.settings import Settings
from livectx.vectors.records import SearchHit, VectorFilter
from livectx_agents.breaker import CircuitBreaker

log = logging.getLogger(__name__)


class ContextUnavailable(LivectxError):
    """``strict=True`` and a part of the context could not be served within the budget."""


@dataclass
class Context:
    entities: list[str]
    #: entity -> feature -> value (declared default when the value is missing or the read degraded)
    features: dict[str, dict[str, Any]]
    similar: list[SearchHit]
    #: ``features``: entity -> group -> age in ms (now - newest event); ``newest_event_ms``: entity -> group
    #: -> that newest event time (epoch ms); ``vector_index``: lag and age
    freshness: dict[str, Any]
    degraded: list[str] = field(default_factory=list)
    elapsed_ms: float = 0.0
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.degraded

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ContextConfig:
    """``budget_ms`` is a call's default budget. A part's timeout, when set, caps that part below the budget
    (``None``: the part follows the budget). The fast feature path's Redis socket timeout is the feature
    timeout, else this default budget: a Redis read slower than that counts as failed whatever the call's
    budget (Redis answers in well under a millisecond when healthy)."""

    budget_ms: float = 50.0
    features_timeout_ms: float | None = None
    vectors_timeout_ms: float | None = None
    failure_threshold: int = 3
    reset_after_s: float = 2.0

    def part_limit_ms(self, part: str, budget_ms: float) -> float:
        """How long ``part`` may take in a call of ``budget_ms``."""
        explicit = self.features_timeout_ms if part == "features" else self.vectors_timeout_ms
        return budget_ms if explicit is None else min(explicit, budget_ms)


class ContextClient:
    """The synchronous client. Thread-safe; create one per process and reuse it."""

    def __init__(
        self,
        read_features: Callable[[Sequence[str], str], dict[str, list[Any]]],
        search: Callable[[np.ndarray, int, VectorFilter | None], list[SearchHit]],
        embed: Callable[[str], np.ndarray],
        index_status: Callable[[], dict[str, Any]] | None = None,
        config: ContextConfig = ContextConfig(),
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
        self._read_features = read_features
        self._search = search
        self._embed = embed
        self._index_status = index_status
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
        config: ContextConfig = ContextConfig(),
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

        read_features: Callable[[Sequence[str], str], dict[str, list[Any]]]
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
        if self._embed is not _no_embed:
            parts["vectors"] = lambda: self._vector_part("warm up", None, 1, None)
        if self._read_features is not _no_features:
            parts["features"] = lambda: [self._read_features(["livectx-warm-up"], s) for s in self.services]
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
        budget_s = budget_ms / 1000
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
            parts["vectors"] = self._submit(
                "vectors", degraded, timings, self._vector_part, query_text, query_vector, top_k, filters
            )
        if entities:
            parts["features"] = self._submit(
                "features",
                degraded,
                timings,
                self._read_features,
                entities,
                feature_service,
                inline_limit_ms=self.config.part_limit_ms("features", budget_ms) if self._inline_features else None,
            )
        timeouts = {name: self.config.part_limit_ms(name, budget_ms) / 1000 for name in ("features", "vectors")}
        results: dict[str, Any] = {}
        for name, future in parts.items():
            remaining = budget_s - (time.perf_counter() - started)
            limit = max(0.0, min(timeouts[name], remaining))
            try:
                results[name] = future.result(timeout=limit)
            except _Skipped:
                continue
            except _Overran as exc:  # ran inline and answered, but later than its timeout
                results[name] = exc.result
                self.breakers[name].record_failure(str(exc))
                degraded.append(f"{name}: {exc}")
                continue
            except FutureTimeout:
                self.breakers[name].record_failure(f"timed out after {limit * 1000:.0f} ms")
                degraded.append(f"{name}: timed out after {limit * 1000:.0f} ms")
            except Exception as exc:  # the dependency failed: the breaker counts it, the caller gets defaults
                self.breakers[name].record_failure(f"{type(exc).__name__}: {exc}")
                degraded.append(f"{name}: {type(exc).__name__}: {exc}")
            else:
                self.breakers[name].record_success()
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

    def _submit(
        self,
        name: str,
        degraded: list[str],
        timings: dict[str, float],
        fn: Callable[..., Any],
        *args: Any,
        inline_limit_ms: float | None = None,
    ) -> Future[Any]:
        """Run a part on the pool, or with ``inline_limit_ms`` on the calling thread (an answer later than
        that limit is kept but reported)."""
        breaker = self.breakers[name]
        if not breaker.allow():
            degraded.append(f"{name}: circuit open ({breaker.last_error})")
            return _skipped()

        def timed() -> Any:
            began = time.perf_counter()
            try:
                return fn(*args)
            finally:
                timings[name] = (time.perf_counter() - began) * 1000

        if inline_limit_ms is None:
            return self._pool.submit(timed)
        # On the calling thread (it would only wait otherwise): its client's socket timeouts bound it, and
        # an answer later than the part's timeout is used but reported (and counted by the breaker).
        done: Future[Any] = Future()
        began = time.perf_counter()
        try:
            result = timed()
        except Exception as exc:
            done.set_exception(exc)
            return done
        elapsed_ms = (time.perf_counter() - began) * 1000
        if elapsed_ms > inline_limit_ms:
            done.set_exception(
                _Overran(result, f"answered after {elapsed_ms:.0f} ms, over its {inline_limit_ms:.0f} ms timeout")
            )
        else:
            done.set_result(result)
        return done

    def _vector_part(
        self,
        query_text: str | None,
        query_vector: Sequence[float] | np.ndarray | None,
        top_k: int,
        filters: VectorFilter | None,
    ) -> tuple[list[SearchHit], dict[str, Any] | None]:
        vector = self._embed(query_text) if query_text is not None else np.asarray(query_vector, dtype=np.float32)
        hits = self._search(vector, top_k, filters)
        try:
            status = self._index_status() if self._index_status is not None else None
        except Exception as exc:  # freshness is informative: losing it must not lose the hits
            log.debug("vector index status unavailable: %s", exc)
            status = None
        return hits, status


def _record_metrics(context: Context, breakers: Mapping[str, CircuitBreaker]) -> None:
    """The call's latency, each part's, the parts left out by reason kind, and the breakers' states."""
    prom.CONTEXT_CALL.observe(context.elapsed_ms / 1000)
    for part, ms in context.timings_ms.items():
        prom.CONTEXT_PART.labels(part).observe(ms / 1000)
    for message in context.degraded:
        prom.CONTEXT_DEGRADED.labels(message.partition(":")[0], prom.degraded_reason(message)).inc()
    for part, breaker in breakers.items():
        prom.BREAKER_OPEN.labels(part).set(1 if breaker.state == "open" else 0)


class _Overran(Exception):
    """An inline part that answered after its timeout: the answer is kept, the lateness reported."""

    def __init__(self, result: Any, message: str) -> None:
        super().__init__(message)
        self.result = result


class _Skipped(Exception):
    """A part not attempted because its circuit is open (its reason is already recorded)."""


def _skipped() -> Future[Any]:
    future: Future[Any] = Future()
    future.set_exception(_Skipped())
    return future


def _shape_features(
    entities: list[str], groups: Sequence[FeatureGroup], raw: dict[str, list[Any]] | None, now_ms: float
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, float | None]], dict[str, dict[str, int | None]]]:
    """Per entity: feature values (defaults where missing), and per view the age and time of its newest event."""
    features: dict[str, dict[str, Any]] = {}
    ages: dict[str, dict[str, float | None]] = {}
    newest_times: dict[str, dict[str, int | None]] = {}
    for i, entity in enumerate(entities):
        values: dict[str, Any] = {}
        entity_ages: dict[str, float | None] = {}
        entity_newest: dict[str, int | None] = {}
        for group in groups:
            group_name = group.name
            for feature in group.features:
                value = raw[feature.name][i] if raw is not None else None
                values[feature.name] = feature.default_value if value is None else value
            newest = raw[group.event_time_field][i] if raw is not None else None
            entity_ages[group_name] = None if newest is None else max(0.0, now_ms - newest)
            entity_newest[group_name] = newest
        features[entity] = values
        ages[entity] = entity_ages
        newest_times[entity] = entity_newest
    return features, ages, newest_times


def _index_freshness(status: dict[str, Any] | None, now_ms: float) -> dict[str, Any] | None:
    if status is None:
        return None
    newest, updated = status.get("newest_event_ms"), status.get("updated_ms")
    return {
        "lag_records": status.get("lag_records"),
        "newest_event_age_ms": None if newest is None else max(0.0, now_ms - newest),
        "status_age_ms": None if updated is None else max(0.0, now_ms - updated),
    }


def bounded_redis_client(settings: Settings, config: ContextConfig) -> Any:
    """A Redis client whose every connect and read gives up within the feature part's timeout, without
    retries: a dead or hung Redis costs one timeout, and the breaker then stops trying."""
    import redis
    from redis.cluster import RedisCluster

    timeout = (config.features_timeout_ms if config.features_timeout_ms is not None else config.budget_ms) / 1000
    options = {"socket_timeout": timeout, "socket_connect_timeout": timeout, "retry_on_timeout": False}
    if settings.redis_cluster:
        return RedisCluster.from_url(settings.redis_url, **options)
    return redis.Redis.from_url(settings.redis_url, retry=None, **options)


def _no_features(_entities: Sequence[str], _service: str) -> dict[str, list[Any]]:
    raise LivectxError("this context client was built without a feature reader (features=False)")


def _no_search(_vector: np.ndarray, _k: int, _where: VectorFilter | None) -> list[SearchHit]:
    raise LivectxError("this context client was built without a vector store (vectors=False)")


def _no_embed(_text: str) -> np.ndarray:
    raise LivectxError("this context client was built without an embedding model (vectors=False)")


def feast_sdk_reader(settings: Settings) -> Callable[[Sequence[str], str], dict[str, list[Any]]]:
    """Feast's own ``get_online_features``: the reference path, selectable instead of the fast one."""
    from livectx.feast_store import open_feature_store
    from livectx.repo import current_repo

    store = open_feature_store(settings)
    repo = current_repo(settings)
    services: dict[str, Any] = {}

    def read(entities: Sequence[str], service: str) -> dict[str, list[Any]]:
        if service not in services:
            services[service] = store.get_feature_service(service)
        join_key = repo.service_groups(service)[0].entity_key
        rows = [{join_key: e} for e in entities]
        return store.get_online_features(features=services[service], entity_rows=rows).to_dict()

    return read


class AsyncContextClient:
    """The asyncio twin: same call, same budget semantics, awaitable (the parts run in worker threads)."""

    def __init__(self, client: ContextClient) -> None:
        self._client = client

    @classmethod
    def from_settings(cls, settings: Settings, config: ContextConfig = ContextConfig()) -> AsyncContextClient:
        return cls(ContextClient.from_settings(settings, config))

    @property
    def sync(self) -> ContextClient:
        return self._client

    async def get_context(self, entities: Sequence[str], feature_service: str | None = None, **kwargs: Any) -> Context:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, lambda: self._client.get_context(entities, feature_service, **kwargs))

    def close(self) -> None:
        self._client.close()
