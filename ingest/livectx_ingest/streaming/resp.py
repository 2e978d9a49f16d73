"""Redis commands written straight in the RESP wire format, for the engine's checkpoint transaction.

A checkpoint writes thousands of ``HSET``s; redis-py spends ~17 µs a command building, queuing and
packing them. Here a command is a few byte joins (constant parts such as a feature view's hash fields are
encoded once), the whole transaction goes out in one ``sendall``, and only the replies that matter
(``EXEC``'s, or an error) are looked at.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from redis.exceptions import ResponseError as RedisResponseError


def bulk(value: bytes) -> bytes:
    """One RESP bulk string."""
    return b"$%d\r\n%s\r\n" % (len(value), value)


def command(*args: bytes | str | int) -> bytes:
    """One command (array of bulk strings)."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            arg = arg.encode()
        elif isinstance(arg, int):
            arg = b"%d" % arg
        parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(parts)


def hset(key: bytes, encoded_pairs: Iterable[bytes], pairs: int) -> bytes:
    """``HSET key f1 v1 ...`` from already bulk-encoded field/value strings (``2 * pairs`` of them)."""
    return b"*%d\r\n$4\r\nHSET\r\n%s%s" % (2 + 2 * pairs, bulk(key), b"".join(encoded_pairs))


class ResponseError(Exception):
    """Redis answered a command with an error; ``kind`` is redis-py's name for it (``MovedError``,
    ``NoScriptError``, ``ResponseError``, ...)."""

    def __init__(self, message: str, kind: str = "ResponseError") -> None:
        super().__init__(message)
        self.kind = kind


class RawTransaction:
    """One connection held for ``WATCH`` -> check -> ``MULTI`` ... ``EXEC``; released (or dropped on any
    error, so a half-read connection never returns to the pool)."""

    def __init__(self, client: Any) -> None:
        """``client``: a ``redis.Redis`` (for a Cluster, the client of the node that owns the keys)."""
        self._pool = client.connection_pool
        self._conn = self._pool.get_connection()
        self._ok = False

    def watch(self, keys: list[str], also: bytes | None = None) -> tuple[list[bytes | None], Any]:
        """``WATCH keys`` then ``MGET keys`` (the values the transaction is conditional on), and the reply
        to ``also``, a read sent in the same round trip (``None`` without one)."""
        self._conn.send_packed_command([command("WATCH", *keys) + command("MGET", *keys) + (also or b"")])
        self._read()
        values = self._read()
        return values, (self._read() if also else None)

    def pipeline(self, commands: list[bytes]) -> list[Any]:
        """Send ``commands`` in one write and return every reply, errors as :class:`ResponseError`
        objects (not raised: the caller decides, and the connection stays in step)."""
        self._conn.send_packed_command([b"".join(commands)])
        replies = []
        for _ in commands:
            try:
                replies.append(self._read())
            except ResponseError as exc:
                replies.append(exc)
        self._ok = True
        return replies

    def execute(self, commands: list[bytes], *, atomic: bool = True) -> list[Any] | None:
        """Send ``commands`` (as ``MULTI``/``EXEC`` when ``atomic``); ``None`` if a watched key changed."""
        if not atomic:
            self._conn.send_packed_command([b"".join(commands)])
            replies = [self._read() for _ in commands]
            self._ok = True
            return replies
        self._conn.send_packed_command([b"".join([command("MULTI"), *commands, command("EXEC")])])
        for _ in range(len(commands) + 1):
            self._read()  # +OK, then +QUEUED per command (a syntax error would surface here)
        result = self._read()
        self._ok = True
        return result

    def unwatch(self) -> None:
        self._conn.send_packed_command([command("UNWATCH")])
        self._read()
        self._ok = True

    def _read(self) -> Any:
        try:
            reply = self._conn.read_response(disable_decoding=True)
        except RedisResponseError as exc:  # an error reply (MOVED, NOSCRIPT, ...): ours, named by its kind
            raise ResponseError(str(exc), kind=type(exc).__name__) from None
        if isinstance(reply, Exception):
            raise ResponseError(str(reply))
        return reply

    def close(self) -> None:
        if not self._ok:
            self._conn.disconnect()
        self._pool.release(self._conn)

    def __enter__(self) -> RawTransaction:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
