"""Crash points for the archive's exactly-once tests: a real ``kill -9`` at a chosen step.

``LIVECTX_ARCHIVE_FAULT=<point>[:<n>]`` makes the process SIGKILL itself the ``n``-th time (default 1st)
it reaches ``point``. Points: ``during-write`` (half a data file written), ``after-data`` (data file
durable, manifest entry not yet written), ``after-manifest`` (file listed, offsets not yet committed).
Unset in production: then :func:`reached` is one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "LIVECTX_ARCHIVE_FAULT"
_hits: dict[str, int] = {}


def armed(point: str) -> bool:
    """True when this call is the one the environment asks to crash at (counts calls per point)."""
    spec = os.environ.get(ENV)
    if not spec:
        return False
    name, _, nth = spec.partition(":")
    if name != point:
        return False
    _hits[point] = _hits.get(point, 0) + 1
    return _hits[point] == int(nth or 1)


def crash() -> None:
    """Die as a power loss would: no cleanup, no flush, no commit."""
    os.kill(os.getpid(), signal.SIGKILL)


def reached(point: str) -> None:
    if armed(point):
        crash()
