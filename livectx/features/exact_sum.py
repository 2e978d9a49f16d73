"""Exact floating-point sums kept as Shewchuk partials: what makes sums and means equal to the last bit.

The engine adds event by event (:func:`exact_add`), the batch path folds whole lists (:func:`fold_exact`)
and the recomputation calls ``math.fsum`` once: all three keep the same exactly rounded value whatever the
order or grouping of additions, so bucket merges, batches and the reference agree bit for bit."""

from __future__ import annotations

import math


def exact_add(partials: list[float], x: float) -> None:
    """Add ``x`` to Shewchuk's non-overlapping partial sums (what ``math.fsum`` keeps), in place.

    Sums and means are then exactly rounded whatever the order or grouping of additions, so bucket merges
    and the batch recomputation (which uses ``math.fsum``) agree to the last bit."""
    i = 0
    for y in partials:
        if abs(x) < abs(y):
            x, y = y, x
        hi = x + y
        lo = y - (hi - x)
        if lo:
            partials[i] = lo
            i += 1
        x = hi
    partials[i:] = [x]


def fold_exact(partials: list[float], values: list[float]) -> None:
    """Add ``values`` to an exact sum kept as non-overlapping partials (smallest first), in place.

    ``math.fsum`` is exactly rounded, so peeling off its result and summing again leaves the exact
    remainder: the partials become ``[..., r2, r1, fsum]``. C speed per value, unlike a Python loop of
    ``exact_add``, and interchangeable with it."""
    total = partials + values
    out: list[float] = []
    while True:
        s = math.fsum(total)
        if s == 0.0 or not math.isfinite(s):
            if not out:
                out.append(s)
            break
        out.append(s)
        total.append(-s)
    out.reverse()
    partials[:] = out
