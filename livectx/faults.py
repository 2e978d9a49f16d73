"""Crash points for exactly-once tests: a real ``kill -9`` at a chosen step of a worker.

A worker names its points and one environment variable; ``<VAR>=<point>[:<n>]`` makes the process SIGKILL
itself the ``n``-th time (default 1st) it reaches ``point``. Unset in production: then a check is one
environment lookup. Used by the archiver (``LIVECTX_ARCHIVE_FAULT``) and the feature engine
(``LIVECTX_ENGINE_CRASH``).
"""

from __future__ import annotations

import os
import signal


def armed(env: str, point: str, hits: dict[str, int]) -> bool:
    """True when this call is the one ``env`` asks to crash at (counts calls per point in ``hits``)."""
    spec = os.environ.get(env)
    if not spec:
        return False
    name, _, nth = spec.partition(":")
    if name != point:
        return False
    hits[point] = hits.get(point, 0) + 1
    return hits[point] == int(nth or 1)


def crash() -> None:
    """Die as a power loss would: no cleanup, no flush, no commit."""
    os.kill(os.getpid(), signal.SIGKILL)


def reached(env: str, point: str, hits: dict[str, int]) -> None:
    if armed(env, point, hits):
        crash()
