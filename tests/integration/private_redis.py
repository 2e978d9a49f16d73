"""A Redis of a test's own, started through the stack's code: one server, or a Redis Cluster of three
masters (``stack up --redis-cluster 3``). For tests that restart or kill Redis, or need a Cluster,
without touching the session's Redis."""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from livectx.settings import RedisSettings, Settings
from livectx.stack.manager import Stack


@dataclass(frozen=True)
class PrivateRedis:
    settings: Settings  # the session's settings, with this Redis as the online store
    stack: Stack  # its stack (only the Redis nodes are started)
    url: str

    @property
    def worker_env(self) -> dict[str, str]:
        """Environment for a worker process that should use this Redis (everything else: the session's)."""
        cluster = "true" if self.settings.redis_cluster else "false"
        return {**os.environ, "LIVECTX_REDIS_URL": self.url, "LIVECTX_REDIS_CLUSTER": cluster}

    def client(self):  # type: ignore[no-untyped-def]
        from livectx.redis_client import redis_client

        return redis_client(self.settings)

    def feature_store(self):  # type: ignore[no-untyped-def]
        """Feast's FeatureStore reading this Redis (``redis_type: redis_cluster`` for a Cluster). Feast takes
        the connection from the environment: it is restored afterwards for the session's other stores."""
        from livectx.feast_store import open_feature_store

        saved = dict(os.environ)
        try:
            return open_feature_store(self.settings)
        finally:
            os.environ.clear()
            os.environ.update(saved)


@contextlib.contextmanager
def private_redis(base: Settings, state_dir: Path, port_offset: int, nodes: int = 0) -> Iterator[PrivateRedis]:
    """Start Redis (``nodes`` > 0: a Cluster of that many masters) on the session's Redis port +
    ``port_offset`` (and the ports after it), in ``state_dir``; stop and forget it afterwards."""
    port = base.stack.redis_port + port_offset
    stack_settings = base.stack.model_copy(
        update={"state_dir": state_dir, "redis_port": port, "redis_cluster_nodes": nodes, "secure": False}
    )
    url = f"redis://{base.stack.host}:{port}/0"
    # A Settings is plain attributes of frozen sections: swap them. The nodes' stack has a state dir of its
    # own; the store's settings keep the session's (Feast's registry is there) and name this Redis.
    nodes_settings = copy.copy(base)
    nodes_settings.stack = stack_settings
    store = copy.copy(base)
    store.redis = RedisSettings(url=url, cluster=nodes > 0)
    the_stack = Stack(nodes_settings)
    the_stack.up(["redis"])
    try:
        yield PrivateRedis(store, the_stack, url)
    finally:
        the_stack.down(["redis"])
