"""Which log positions the two tiers hold, and the gaps neither holds.

A partition's positions ``[0, high)`` are covered by the archive (the ``[start, end)`` of its current
entries) and by the broker (``[low, high)``). Anything else is a gap: records that expired or were
deleted before they were archived. A gap is reported as an error, never papered over.
"""

from __future__ import annotations

from collections.abc import Iterable

from livectx.errors import LivectxError

Range = tuple[int, int]  # [start, end)


class TierGapError(LivectxError):
    """Records in a requested range are in neither the archive nor on the broker."""


def merged(ranges: Iterable[Range]) -> list[Range]:
    """Sorted, non-overlapping union of ``[start, end)`` ranges (touching ranges are joined)."""
    out: list[Range] = []
    for start, end in sorted(r for r in ranges if r[1] > r[0]):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def missing(required: Range, covered: Iterable[Range]) -> list[Range]:
    """The parts of ``required`` that no range in ``covered`` contains."""
    start, end = required
    gaps: list[Range] = []
    cursor = start
    for lo, hi in merged(covered):
        if hi <= cursor:
            continue
        if lo >= end:
            break
        if lo > cursor:
            gaps.append((cursor, lo))
        cursor = max(cursor, hi)
        if cursor >= end:
            break
    if cursor < end:
        gaps.append((cursor, end))
    return gaps


def describe_gap(topic: str, partition: int, gap: Range) -> str:
    return (
        f"{topic}[{partition}] offsets {gap[0]}..{gap[1] - 1} ({gap[1] - gap[0]:,} positions) are in neither the "
        "archive nor on the broker: they expired or were deleted before the archiver stored them"
    )
