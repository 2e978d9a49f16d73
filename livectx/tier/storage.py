"""Where the cold tier lives: one fsspec filesystem and root, with atomic, durable writes.

Everything the archive writes goes through :meth:`TierStorage.put_atomic`, so a reader (or a restarted
archiver) never sees half a file: on a local disk the bytes go to a temporary file that is fsynced and
renamed over the target (then the directory is fsynced); on an object store a single PUT is atomic and
durable once it returns. ``settings.tier_url`` picks the backend (``s3://bucket/prefix`` with
``settings.tier.storage_options``, or a local folder).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, BinaryIO

from livectx.errors import ConfigError
from livectx.settings import Settings
from livectx.tier import faults

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem


class TierStorage:
    """A filesystem plus the archive's root; paths given to methods are relative to the root."""

    def __init__(self, fs: AbstractFileSystem, root: str) -> None:
        self.fs = fs
        self.root = root.rstrip("/")
        self.local = "file" in _protocols(fs)

    def full(self, relative: str) -> str:
        return f"{self.root}/{relative.lstrip('/')}"

    def relative(self, full: str) -> str:
        stripped = full[len(self.root) :] if full.startswith(self.root) else full
        return stripped.lstrip("/")

    def url(self, relative: str) -> str:
        """A URL DuckDB (or any fsspec user) can open: a plain path locally, ``proto://...`` otherwise."""
        path = self.full(relative)
        return path if self.local else f"{_protocols(self.fs)[0]}://{path}"

    def put_atomic(self, relative: str, data: bytes) -> None:
        """Write ``data`` so that the file appears complete or not at all, and survives a crash once this
        returns."""
        target = self.full(relative)
        if not self.local:
            self.fs.pipe_file(target, data)  # one PUT: atomic and durable when it returns
            return
        os.makedirs(os.path.dirname(target), exist_ok=True)
        tmp = f"{target}.{uuid.uuid4().hex[:8]}.tmp"
        with open(tmp, "wb") as handle:
            if faults.armed("during-write"):
                handle.write(data[: len(data) // 2])
                handle.flush()
                faults.crash()
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        _fsync_dir(os.path.dirname(target))

    def read_bytes(self, relative: str) -> bytes:
        return self.fs.cat_file(self.full(relative))

    def read_many(self, relatives: list[str]) -> dict[str, bytes]:
        """Contents of many small files (concurrent on object stores)."""
        if not relatives:
            return {}
        fulls = [self.full(r) for r in relatives]
        raw = self.fs.cat(fulls, on_error="omit")  # a file deleted meanwhile is simply gone
        by_full = {self.fs._strip_protocol(k): v for k, v in raw.items()}
        return {r: by_full[self.fs._strip_protocol(f)] for r, f in zip(relatives, fulls, strict=True) if
                self.fs._strip_protocol(f) in by_full}  # fmt: skip

    def open(self, relative: str) -> BinaryIO:
        return self.fs.open(self.full(relative), "rb")

    def find(self, prefix: str) -> list[str]:
        """Every file under ``prefix`` (relative paths); none when the prefix does not exist."""
        base = self.full(prefix)
        if not self.fs.exists(base):
            return []
        return sorted(self.relative(self.fs._strip_protocol(p)) for p in self.fs.find(base))

    def list_dirs(self, prefix: str) -> list[str]:
        base = self.full(prefix)
        if not self.fs.exists(base):
            return []
        return sorted(
            self.fs._strip_protocol(e["name"]).rstrip("/").rsplit("/", 1)[-1]
            for e in self.fs.ls(base, detail=True)
            if e["type"] == "directory"
        )

    def modified_s(self, relative: str) -> float | None:
        """Modification time (epoch seconds) or ``None`` if the backend does not say."""
        info = self.fs.info(self.full(relative))
        for key in ("mtime", "LastModified", "last_modified", "created"):
            value = info.get(key)
            if value is None:
                continue
            return value.timestamp() if hasattr(value, "timestamp") else float(value)
        return None

    def delete(self, relatives: Iterable[str]) -> None:
        for relative in relatives:
            # Already gone (a concurrent or retried vacuum) is fine: the goal is reached.
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(self.full(relative))


def open_storage(settings: Settings) -> TierStorage:
    """The cold tier's storage from ``settings.tier_url`` (+ ``settings.tier.storage_options``)."""
    from fsspec.core import url_to_fs

    try:
        fs, root = url_to_fs(settings.tier_url, **settings.tier.storage_options)
    except (ImportError, ValueError) as exc:
        raise ConfigError(
            f"cannot open the cold tier at {settings.tier_url!r} ({exc}); for s3:// install the extra: "
            "pip install 'livectx[s3]'"
        ) from None
    return TierStorage(fs, root)


def _protocols(fs: AbstractFileSystem) -> tuple[str, ...]:
    protocol: Any = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
