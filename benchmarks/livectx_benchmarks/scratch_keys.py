"""Removing what a bench wrote to Redis, so a run leaves the store as it found it.

A bench names everything it creates after its run's tag: consumer groups (so the engine's state, epoch and
offset keys), topics and users (so the Feast keys of their online rows, which embed the entity's id). Left
behind, one ``bench features`` run added about 50 MB to Redis (measured: 223 MB after seven runs), and each
later run paid for it: Redis rewrites its append-only file from the whole dataset whenever the file has
doubled, about a second of a core per 100 MB here, and on a 2-core machine that second can land in the
measurements of whatever runs next.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: Keys per ``UNLINK`` (one command, so a huge key list never becomes one huge request).
CHUNK = 500


def unlink_keys(client: Any, keys: Iterable[bytes | str]) -> int:
    """``UNLINK`` ``keys`` (freed in Redis's background thread) in chunks; returns how many existed."""
    removed, chunk = 0, []
    for key in keys:
        chunk.append(key)
        if len(chunk) >= CHUNK:
            removed += client.unlink(*chunk)
            chunk = []
    if chunk:
        removed += client.unlink(*chunk)
    return removed


def forget_tagged(client: Any, tag: str) -> int:
    """Remove every key whose name contains ``tag`` (a run's uuid fragment: nothing else can contain it)."""
    if len(tag) < 8 or any(c in tag for c in "*?[]\\"):
        raise ValueError(f"refusing to match keys by {tag!r}: a run tag is at least 8 plain characters")
    return unlink_keys(client, list(client.scan_iter(match=f"*{tag}*", count=1000)))
