"""Crash points for the archive's exactly-once tests (see :mod:`livectx.faults`).

``LIVECTX_ARCHIVE_FAULT=<point>[:<n>]``. Points: ``during-write`` (half a data file written), ``after-data``
(data file durable, manifest entry not yet written), ``after-manifest`` (file listed, offsets not yet
committed).
"""

from __future__ import annotations

from livectx import faults
from livectx.faults import crash

__all__ = ["ENV", "armed", "crash", "reached"]

ENV = "LIVECTX_ARCHIVE_FAULT"
_hits: dict[str, int] = {}


def armed(point: str) -> bool:
    """True when this call is the one the environment asks to crash at (counts calls per point)."""
    return faults.armed(ENV, point, _hits)


def reached(point: str) -> None:
    if armed(point):
        crash()
