"""``embedding-backends``: the CPU backends of the embedding model against torch, on the same texts and batch.

Part of ``bench embeddings`` (its ``torch_*`` / ``onnx_*`` figures) and runnable alone, without the stack.

- Speed: each backend embeds the benchmark's texts batch after batch of the worker's batch size; the
  passes are interleaved (torch, onnx, int8, then the reverse) so machine noise falls on all alike, and
  each backend's figure is its texts over its total time.
- Quality against torch fp32 on the CPU: the mean (and minimum) cosine similarity of each text's vectors,
  and recall@10 of neighbours: for each text, its 10 nearest other texts by the backend's vectors against
  those by torch's. The benchmark's texts are near-duplicates (templated, differing in an order number),
  so the 10th and 11th neighbours are often within 0.001 cosine: a strict test of reordering.

``onnx_*`` is the ONNX backend ``auto`` picks on a CPU (fp32); ``onnx_int8_*`` is the opt-in int8 one.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from livectx.settings import Settings
from livectx.vectors.embedder import CPU_DEFAULT, Embedder
from livectx_benchmarks.result import BenchResult

TOP_K = 10


def neighbour_recall(reference: np.ndarray, candidate: np.ndarray, k: int = TOP_K) -> float:
    """Mean overlap of each row's k nearest other rows (cosine) under ``candidate`` and ``reference``."""

    def top(vectors: np.ndarray) -> np.ndarray:
        sims = vectors @ vectors.T
        np.fill_diagonal(sims, -np.inf)  # a text is not its own neighbour
        return np.argpartition(-sims, k, axis=1)[:, :k]

    ref, cand = top(reference), top(candidate)
    return float(np.mean([len(set(a.tolist()) & set(b.tolist())) / k for a, b in zip(ref, cand, strict=True)]))


def _timed_pass(embedder: Embedder, texts: Sequence[str], batch_size: int) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    out = [embedder.embed(texts[i : i + batch_size], batch_size=batch_size) for i in range(0, len(texts), batch_size)]
    return np.concatenate(out), time.perf_counter() - started


def compare(settings: Settings, texts: Sequence[str], batch_size: int) -> dict[str, float]:
    """torch vs ONNX fp32 vs ONNX int8 on the CPU: texts/s, speed-ups, recall@10 and cosine to torch."""
    cache = settings.stack.cache_dir
    model = settings.embedding.model
    embedders = {
        "torch": Embedder(model, "cpu", "torch", cache).load(),
        "onnx": Embedder(model, "cpu", CPU_DEFAULT, cache).load(),
        "onnx_int8": Embedder(model, "cpu", "onnx-int8", cache).load(),
    }
    seconds = dict.fromkeys(embedders, 0.0)
    vectors: dict[str, np.ndarray] = {}
    for order in (list(embedders), list(reversed(embedders))):
        for name in order:
            vectors[name], took = _timed_pass(embedders[name], texts, batch_size)
            seconds[name] += took
    per_s = {name: 2 * len(texts) / seconds[name] for name in embedders}
    reference = vectors["torch"]
    figures = {"torch_texts_per_s": per_s["torch"]}
    for name in ("onnx", "onnx_int8"):
        cosine = np.sum(vectors[name] * reference, axis=1)
        figures |= {
            f"{name}_texts_per_s": per_s[name],
            f"{name}_speedup": per_s[name] / per_s["torch"],
            f"{name}_recall_at_10": neighbour_recall(reference, vectors[name]),
            f"{name}_mean_cosine": float(np.mean(cosine)),
            f"{name}_min_cosine": float(np.min(cosine)),
        }
    return figures


def run(settings: Settings, scale: float = 1.0) -> BenchResult:
    from livectx_benchmarks.embeddings import TEXTS, _texts

    count = max(200, int(TEXTS * scale))
    texts = [f"{d.title}\n{d.text}" for d in _texts(count)]
    batch_size = settings.embedding.batch_size
    result = BenchResult("embedding-backends")
    result.figures = {"texts": count, **compare(settings, texts, batch_size)}
    result.notes.append(f"{settings.embedding.model} on the CPU, batch {batch_size}; {note()}")
    return result


def note() -> str:
    return (
        "onnx_* = ONNX Runtime fp32 (the CPU default), onnx_int8_* = dynamic int8 (opt-in); "
        "quality against torch fp32 on the same texts"
    )
