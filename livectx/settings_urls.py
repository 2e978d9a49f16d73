"""URL helpers of the settings: Feast's Redis connection string, and URLs made safe to show.

Apart from :mod:`livectx.settings` because they are pure string work on URLs with no settings in them;
``feast_redis_connection_string`` stays importable from :mod:`livectx.settings` too.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from livectx.errors import ConfigError


def feast_redis_connection_string(url: str, *, cluster: bool = False) -> str:
    """Turn ``redis://[:password@]host:port/db`` into Feast's ``host:port,db=N[,password=..][,ssl=true]``
    (without ``db`` for a Cluster, which has only database 0 and whose client refuses the argument)."""
    parts = urlsplit(url)
    if parts.scheme not in {"redis", "rediss"} or not parts.hostname:
        raise ConfigError(f"Redis URL {mask_url(url)!r} is not redis://host:port/db or rediss://...")
    pieces = [f"{parts.hostname}:{parts.port or 6379}"]
    db = parts.path.strip("/")
    if cluster and db not in {"", "0"}:
        raise ConfigError(f"a Redis Cluster has only database 0: {mask_url(url)!r} names database {db}")
    if db and not cluster:
        pieces.append(f"db={db}")
    if parts.username and parts.username != "default":
        pieces.append(f"username={parts.username}")
    if parts.password:
        pieces.append(f"password={parts.password}")
    if parts.scheme == "rediss":
        pieces.append("ssl=true")
    return ",".join(pieces)


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``****``: for display (``livectx config``) and error messages."""
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":****@")
    return url


def strip_user_info(url: str) -> str:
    """``url`` without user and password (they travel separately, as basic auth), so it is safe to print."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))
