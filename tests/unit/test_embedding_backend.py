"""Which embedding backend runs where: ``auto`` is torch on CUDA and ONNX on the CPU; ONNX is CPU-only."""

from __future__ import annotations

import pytest

from livectx.errors import ConfigError
from livectx.settings import EmbeddingSettings
from livectx.vectors.embedder import CPU_DEFAULT, Embedder, resolve_backend


def test_auto_is_onnx_on_the_cpu_and_torch_on_cuda() -> None:
    assert resolve_backend("auto", "cpu") == (CPU_DEFAULT, "cpu")
    assert resolve_backend("auto", "cuda") == ("torch", "cuda")
    assert resolve_backend("auto", "cuda:1") == ("torch", "cuda:1")
    assert resolve_backend("torch", "cpu") == ("torch", "cpu")
    assert resolve_backend("onnx-int8", "auto") == ("onnx-int8", "cpu")


def test_onnx_on_a_gpu_or_an_unknown_backend_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="runs on the CPU"):
        resolve_backend("onnx", "cuda")
    with pytest.raises(ConfigError, match="unknown embedding backend"):
        Embedder(backend="tensorrt")


def test_the_backend_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert EmbeddingSettings().backend == "auto"
    monkeypatch.setenv("LIVECTX_EMBEDDING_BACKEND", "onnx-int8")
    assert EmbeddingSettings().backend == "onnx-int8"
