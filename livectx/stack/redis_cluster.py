"""Forms the local stack's Redis Cluster from its freshly started masters, once.

``stack up --redis-cluster N`` starts N ``redis-server --cluster-enabled yes`` nodes; a new cluster has no
slots and its nodes do not know each other. This splits the 16,384 hash slots evenly (``CLUSTER
ADDSLOTSRANGE``), introduces the nodes (``CLUSTER MEET``) and waits until every node reports
``cluster_state:ok``. Each node keeps its view in ``nodes.conf``, so a restarted node rejoins by itself
and this step is a no-op. No replicas: this is a local cluster for one machine; production clusters are
made by their operators (or a managed service) and livectx only connects to them.
"""

from __future__ import annotations

from typing import Any

from livectx.errors import ServiceError
from livectx.settings import Settings
from livectx.stack.process import wait_until

SLOTS = 16_384


def slot_ranges(nodes: int) -> list[tuple[int, int]]:
    """Contiguous, inclusive slot ranges, one per node, covering all slots as evenly as possible."""
    if nodes < 1:
        raise ValueError("a cluster needs at least one node")
    bounds = [SLOTS * i // nodes for i in range(nodes + 1)]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(nodes)]


def _clients(settings: Settings) -> list[Any]:
    import redis

    stack = settings.stack
    return [
        redis.Redis(host=stack.host, port=stack.redis_port + i, socket_timeout=5, decode_responses=True)
        for i in range(stack.redis_cluster_nodes)
    ]


def form_cluster(settings: Settings, timeout_s: float) -> None:
    """Assign slots and meet the nodes if they are new; then wait for ``cluster_state:ok`` everywhere."""
    clients = _clients(settings)
    try:
        infos = [c.cluster("INFO") for c in clients]
        if all(int(info.get("cluster_slots_assigned", 0)) == 0 for info in infos):
            for client, (first, last) in zip(clients, slot_ranges(len(clients)), strict=True):
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
            for i in range(1, len(clients)):
                clients[0].execute_command("CLUSTER", "MEET", settings.stack.host, settings.stack.redis_port + i)

        def ok() -> bool:
            return all(c.cluster("INFO").get("cluster_state") == "ok" for c in clients) and all(
                int(c.cluster("INFO").get("cluster_known_nodes", 0)) == len(clients) for c in clients
            )

        if not wait_until(ok, timeout_s, poll_s=0.1):
            states = [c.cluster("INFO").get("cluster_state") for c in clients]
            raise ServiceError(f"the Redis Cluster did not reach cluster_state:ok (nodes: {states})")
    finally:
        for client in clients:
            client.close()
