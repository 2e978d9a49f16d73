"""Idempotent side effects: an action triggered by a Kafka record happens once, even across crashes.

The key is the record's position (``<topic>-<partition>-<offset>``), stable across redeliveries.
- Idempotent HTTP APIs get it as an ``Idempotency-Key`` header; the API deduplicates.
- Non-idempotent actions are guarded here: the key is claimed in Redis atomically (``SET NX`` with an
  expiry) before acting, and the outcome is recorded after. A redelivered record finds the outcome and
  does not act again. A crash *during* the action leaves the claim until it expires: the action is then
  at most once, and the claim's expiry is how long a half-done action blocks a retry.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def idempotency_key(topic: str, partition: int, offset: int) -> str:
    return f"{topic}-{partition}-{offset}"


@dataclass(frozen=True)
class Outcome:
    ran: bool  # this call performed the action
    result: Any = None  # the action's result (recorded by whoever ran it)
    pending: bool = False  # claimed by someone whose outcome is not recorded (running, or crashed mid-way)


class IdempotentActions:
    def __init__(
        self,
        redis_client: Any,
        namespace: str = "livectx:action",
        claim_ttl_s: int = 300,
        outcome_ttl_s: int = 7 * 24 * 3600,
    ) -> None:
        self._redis = redis_client
        self._namespace = namespace
        self._claim_ttl_s = claim_ttl_s
        self._outcome_ttl_s = outcome_ttl_s
        self._owner = f"{socket.gethostname()}:{os.getpid()}"

    def _key(self, key: str) -> str:
        return f"{self._namespace}:{key}"

    def run_once(self, key: str, action: Callable[[], Any]) -> Outcome:
        """Run ``action`` unless ``key`` was already claimed; record its (JSON-serialisable) result."""
        redis_key = self._key(key)
        claim = json.dumps({"state": "claimed", "owner": self._owner})
        if not self._redis.set(redis_key, claim, nx=True, ex=self._claim_ttl_s):
            return self.outcome(key)
        try:
            result = action()
        except BaseException:
            self._redis.delete(redis_key)  # the action failed before acting: let a retry claim it again
            raise
        self._redis.set(redis_key, json.dumps({"state": "done", "result": result}), ex=self._outcome_ttl_s)
        return Outcome(ran=True, result=result)

    def outcome(self, key: str) -> Outcome:
        raw = self._redis.get(self._key(key))
        if raw is None:
            return Outcome(ran=False)
        record = json.loads(raw)
        if record["state"] == "done":
            return Outcome(ran=False, result=record["result"])
        return Outcome(ran=False, pending=True)


def call_idempotent_api(
    client: Any, method: str, url: str, key: str, **kwargs: Any
) -> Any:  # client: an httpx.Client (or anything with .request)
    """Call an API that deduplicates by ``Idempotency-Key`` (Stripe-style): retries are then safe."""
    headers = {**kwargs.pop("headers", {}), "Idempotency-Key": key}
    return client.request(method, url, headers=headers, **kwargs)
