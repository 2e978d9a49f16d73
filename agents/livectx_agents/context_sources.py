"""Where a context comes from: the feature reader, the vector search, the embedding model, the index status.

Grouped in :class:`ContextSources` because the client treats them as one set of dependencies, injected
together (fakes in tests, the configured stores in :meth:`~livectx_agents.context.ContextClient.
from_settings`), and because a part left out (``features=False``, ``vectors=False``) is a stand-in here that
raises, so that the client's budget handling reports it like any other failing dependency.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from livectx.errors import LivectxError
from livectx.settings import Settings
from livectx.vectors.records import SearchHit, VectorFilter
from livectx_agents.context_budget import ContextConfig

log = logging.getLogger(__name__)

ReadFeatures = Callable[[Sequence[str], str], dict[str, list[Any]]]
Search = Callable[[np.ndarray, int, VectorFilter | None], list[SearchHit]]
Embed = Callable[[str], np.ndarray]
IndexStatus = Callable[[], dict[str, Any]]


@dataclass(frozen=True)
class ContextSources:
    """The dependencies a client reads: features by entity and service; hits by vector; a text's vector; and
    the vector index's status (optional: freshness only)."""

    read_features: ReadFeatures
    search: Search
    embed: Embed
    index_status: IndexStatus | None = None

    @property
    def has_features(self) -> bool:
        return self.read_features is not _no_features

    @property
    def has_vectors(self) -> bool:
        return self.embed is not _no_embed

    def similar(
        self,
        query_text: str | None,
        query_vector: Sequence[float] | np.ndarray | None,
        top_k: int,
        filters: VectorFilter | None,
    ) -> tuple[list[SearchHit], dict[str, Any] | None]:
        """The vector part: the query's top-k hits, and the index status read after them (or None)."""
        vector = self.embed(query_text) if query_text is not None else np.asarray(query_vector, dtype=np.float32)
        hits = self.search(vector, top_k, filters)
        try:
            status = self.index_status() if self.index_status is not None else None
        except Exception as exc:  # freshness is informative: losing it must not lose the hits
            log.debug("vector index status unavailable: %s", exc)
            status = None
        return hits, status


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


def feast_sdk_reader(settings: Settings) -> ReadFeatures:
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
