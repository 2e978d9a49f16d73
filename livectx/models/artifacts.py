"""Model artifacts in the object store beside the archive, content-checked by sha256.

``<models url>/<name>/<version>/<file name>`` on any fsspec filesystem (a local folder by default, S3 with
the ``s3`` extra). The record stores the URI and the sha256 of the bytes; loading re-hashes what it reads
and refuses a mismatch, so a swapped or truncated file never reaches a live agent.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

from livectx.models.errors import ArtifactIntegrityError, ModelRegistryError

CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def artifact_uri(models_url: str, name: str, version: str, filename: str) -> str:
    return f"{models_url.rstrip('/')}/{name}/{version}/{filename}"


def upload(path: Path, uri: str, storage_options: dict[str, Any] | None = None) -> str:
    """Copy a local file to ``uri`` and return its sha256 (hashed from the local bytes before the copy).

    Raises:
        ModelRegistryError: the file is missing, or the store refused the copy.
    """
    from fsspec.core import url_to_fs

    if not path.is_file():
        raise ModelRegistryError(f"artifact {path} does not exist or is not a file")
    sha = sha256_file(path)
    try:
        fs, target = url_to_fs(uri, **(storage_options or {}))
        fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        fs.put_file(str(path), target)
    except Exception as exc:
        raise ModelRegistryError(f"could not copy the artifact to {uri}: {exc}") from None
    return sha


def read_verified(uri: str, sha256: str, storage_options: dict[str, Any] | None = None) -> bytes:
    """The artifact's bytes, after checking they hash to ``sha256``.

    Raises:
        ModelRegistryError: the artifact cannot be read.
        ArtifactIntegrityError: its bytes hash to something else.
    """
    from fsspec.core import url_to_fs

    try:
        fs, target = url_to_fs(uri, **(storage_options or {}))
        with fs.open(target, "rb") as f:
            data = f.read()
    except Exception as exc:
        raise ModelRegistryError(f"could not read the artifact {uri}: {exc}") from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise ArtifactIntegrityError(
            f"artifact {uri} has sha256 {actual[:12]}..., its record says {sha256[:12]}...: it was changed "
            "after registration; register the new file as a new version"
        )
    return data


def load_joblib(data: bytes, source: str) -> Any:
    """Unpickle a joblib artifact (only ever from the platform's own, sha-checked store).

    Raises:
        ModelRegistryError: the bytes are not a joblib file (or need a package that is not installed).
    """
    import joblib

    try:
        return joblib.load(io.BytesIO(data))
    except Exception as exc:
        raise ModelRegistryError(f"{source} is not a loadable joblib artifact: {exc}") from None
