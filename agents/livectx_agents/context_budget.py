"""A ``get_context`` call's budget: how long each part may take, and running the parts within it.

The rules live here, apart from the client's wiring (:mod:`.context`): a part's timeout caps it below the
call's budget, a part whose breaker is open is not attempted, a part that times out or fails is counted by
its breaker and named in ``degraded``, and a part run inline that answers late is kept but reported.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from livectx_agents.breaker import CircuitBreaker


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


def submit_part(
    pool: ThreadPoolExecutor,
    name: str,
    breaker: CircuitBreaker,
    degraded: list[str],
    timings: dict[str, float],
    fn: Callable[..., Any],
    *args: Any,
    inline_limit_ms: float | None = None,
) -> Future[Any]:
    """Run part ``name`` behind its ``breaker`` on the pool, or with ``inline_limit_ms`` on the calling
    thread (an answer later than that limit is kept but reported)."""
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
        return pool.submit(timed)
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


def collect_parts(
    parts: Mapping[str, Future[Any]],
    breakers: Mapping[str, CircuitBreaker],
    config: ContextConfig,
    budget_ms: float,
    started: float,
    degraded: list[str],
) -> dict[str, Any]:
    """Each part's result, waiting for none past its timeout or past what is left of the call's budget
    (which began at ``started``, a ``perf_counter`` time). A part that fails or is late is left out and
    named in ``degraded``, and its breaker counts it; one that answers in time counts as a success."""
    budget_s = budget_ms / 1000
    timeouts = {name: config.part_limit_ms(name, budget_ms) / 1000 for name in ("features", "vectors")}
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
            breakers[name].record_failure(str(exc))
            degraded.append(f"{name}: {exc}")
            continue
        except FutureTimeout:
            breakers[name].record_failure(f"timed out after {limit * 1000:.0f} ms")
            degraded.append(f"{name}: timed out after {limit * 1000:.0f} ms")
        except Exception as exc:  # the dependency failed: the breaker counts it, the caller gets defaults
            breakers[name].record_failure(f"{type(exc).__name__}: {exc}")
            degraded.append(f"{name}: {type(exc).__name__}: {exc}")
        else:
            breakers[name].record_success()
    return results


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
