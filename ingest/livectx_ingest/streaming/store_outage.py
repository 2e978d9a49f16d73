"""Riding out an online-store outage: retry with bounded backoff, one log line when it starts, one when it
ends, and a clear error if it lasts too long.

A restarted or failing-over Redis is an operational event, not a data problem: the engine's checkpoint
waits for it rather than crash, because every store call it makes is safe to repeat (claims only fence
older owners, reads are reads, and a commit is checked against the offsets the store holds first:
:mod:`.checkpoint`). Past ``give_up_s`` the worker stops with one line saying so; a supervisor restarts
it, and it resumes from the store's offsets. (Kafka's ``max.poll.interval.ms``, five minutes by default,
would hand our partitions to another worker anyway if we blocked much longer.)
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable
from typing import TypeVar

from livectx.errors import NotReachableError

T = TypeVar("T")
log = logging.getLogger(__name__)


@functools.cache
def connection_errors() -> tuple[type[BaseException], ...]:
    """redis-py's errors that mean "the server is not there (yet)": refused, reset, timed out, or still
    loading its data after a restart; a Cluster's errors while it moves slots or elects. (Built once: every
    checkpoint passes through here.)"""
    import redis
    from redis.exceptions import BusyLoadingError, ClusterDownError, TryAgainError

    return (redis.ConnectionError, redis.TimeoutError, BusyLoadingError, ClusterDownError, TryAgainError, OSError)


class StoreOutage:
    """Calls a store operation until it succeeds, backing off from ``first_s`` to ``max_s``."""

    def __init__(
        self,
        what: str,
        *,
        first_s: float = 0.05,
        max_s: float = 2.0,
        give_up_s: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        errors: tuple[type[BaseException], ...] | None = None,
        logger: logging.Logger = log,
    ) -> None:
        self.what = what
        self._first, self._max, self._give_up = first_s, max_s, give_up_s
        self._sleep, self._clock = sleep, clock
        self._errors = errors
        self._log = logger
        #: Outages ridden out so far (for tests and metrics).
        self.outages = 0

    def call(
        self,
        operation: Callable[[], T],
        *,
        on_retry: Callable[[], None] | None = None,
        also: tuple[type[BaseException], ...] = (),
    ) -> T:
        """``operation()``; on a connection error (or one of ``also``), wait and call it again (``on_retry``
        first, e.g. to refresh a Cluster's slot map).

        Raises:
            NotReachableError: the store stayed unreachable for ``give_up_s``.
        """
        errors = (self._errors if self._errors is not None else connection_errors()) + also
        began: float | None = None
        wait, tries = self._first, 0
        while True:
            try:
                result = operation()
            except errors as exc:  # (any other error means the store answered: the outage is over)
                now = self._clock()
                if began is None:
                    began = now
                    self.outages += 1
                    self._log.warning(
                        "%s unreachable (%s: %s); waiting for it, retrying with backoff up to %.1f s",
                        self.what, type(exc).__name__, exc, self._max,
                    )  # fmt: skip
                elif now - began >= self._give_up:
                    raise NotReachableError(
                        f"{self.what} unreachable for {now - began:.0f} s ({type(exc).__name__}: {exc}); "
                        "stopping: restart the worker once it is back (it resumes from the store's offsets)"
                    ) from None
                tries += 1
                self._sleep(wait)  # backoff between retries of an unreachable server, not synchronisation
                wait = min(self._max, wait * 2)
                if on_retry is not None:
                    with contextlib.suppress(*errors):
                        on_retry()
                continue
            except BaseException:
                self._recovered(began, tries)
                raise
            self._recovered(began, tries)
            return result

    def _recovered(self, began: float | None, tries: int) -> None:
        if began is not None:
            seconds = self._clock() - began
            self._log.warning("%s reachable again after %.1f s (%d retries)", self.what, seconds, tries)
