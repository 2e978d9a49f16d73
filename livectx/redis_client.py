"""The Redis client for the online store, built from settings (plain Redis or Redis Cluster)."""

from __future__ import annotations

from typing import Any

from livectx.settings import Settings


def redis_client(settings: Settings) -> Any:
    """A client for ``LIVECTX_REDIS_URL``; a ``RedisCluster`` when ``LIVECTX_REDIS_CLUSTER`` is set, so the
    workers and Feast (``redis_type: redis_cluster``) address the same store the same way."""
    import redis
    from redis.cluster import RedisCluster

    if settings.redis_cluster:
        return RedisCluster.from_url(settings.redis_url)
    return redis.Redis.from_url(settings.redis_url)
