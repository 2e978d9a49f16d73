"""The embedding model on ONNX Runtime (CPU): exported once from the shipped weights, cached, optionally int8.

Why: on a CPU the model is the whole cost of the embedding pipeline, and ONNX Runtime's fused BERT kernels
(attention, skip-layer-norm, bias-GELU) run the same fp32 maths faster than eager torch. Dynamic int8
quantisation is faster still, but moves vectors enough to reorder near-tied neighbours (see the README's
"Semantic memory"), so it is opt-in, not the default.

The pipeline is the sentence-transformers one, step for step: the model's own fast tokenizer (stripped
texts, padding to the longest, truncation at the model's ``max_seq_length``), the transformer, mean pooling
over the attention mask, L2 normalisation. Only the transformer runs in ONNX Runtime.

The export is cached under ``<cache dir>/onnx/<model>-<key>/``; the key hashes the weights' bytes, the
model's config and the export settings (opset, quantisation, library versions), so new weights or a new
exporter never reuse a stale graph. Files are written to a temporary name and renamed, so processes that
load the model for the first time at once never read a half-written file: each rename is atomic and
every writer writes the same graph.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from livectx.errors import MissingPrerequisiteError

log = logging.getLogger(__name__)

OPSET = 17
#: Bumped when the export recipe changes, so caches of the old recipe are not reused.
RECIPE = 1
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
INSTALL_HINT = "pip install onnxruntime onnx (part of 'livectx[embeddings]')"


def default_cache_dir() -> Path:
    """The stack's default cache dir (``$XDG_CACHE_HOME/livectx``): what ``LIVECTX_STACK_CACHE_DIR`` overrides."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "livectx"


def _versions() -> dict[str, str]:
    import onnxruntime
    import transformers

    return {"onnxruntime": onnxruntime.__version__, "transformers": transformers.__version__}


def cache_key(model_dir: Path) -> str:
    """Identity of the weights and of the export: the weight files' bytes, configs, recipe and versions."""
    digest = hashlib.sha256()
    for name in sorted(p.name for p in model_dir.iterdir() if p.suffix in {".safetensors", ".bin", ".json"}):
        digest.update(name.encode())
        with (model_dir / name).open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    digest.update(json.dumps({"opset": OPSET, "recipe": RECIPE, **_versions()}, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def _atomic_target(path: Path) -> Path:
    """A temporary file beside ``path`` (same file system, so the final rename is atomic)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def _publish(tmp: Path, target: Path) -> None:
    """Rename a finished temporary file into place, readable like any other cached file (mkstemp makes 0600)."""
    tmp.chmod(0o644)
    os.replace(tmp, target)


def export_fp32(model_dir: Path, target: Path) -> None:
    """Export the transformer (eager attention, dynamic batch and length), then fuse it for CPU inference.

    Eager attention rather than SDPA: its graph is the pattern ONNX Runtime's BERT optimizer fuses into
    one ``Attention`` op; the SDPA graph keeps NaN guards that block the fusion.
    """
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()

    class LastHiddenState(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    example = {k: torch.ones((2, 8), dtype=torch.int64) for k in INPUTS}
    example["token_type_ids"] = torch.zeros((2, 8), dtype=torch.int64)
    raw = _atomic_target(target)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            # The TorchScript exporter (deprecated, but needs no onnxscript) warns about traced shape
            # checks that are constant for BERT: noise here.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                LastHiddenState(model),
                tuple(example[k] for k in INPUTS),
                str(raw),
                input_names=list(INPUTS),
                output_names=["last_hidden_state"],
                dynamic_axes={k: {0: "batch", 1: "sequence"} for k in (*INPUTS, "last_hidden_state")},
                opset_version=OPSET,
                dynamo=False,
            )
        from onnxruntime.transformers.optimizer import optimize_model

        config = json.loads((model_dir / "config.json").read_text())
        with _quiet("onnxruntime.transformers"):
            optimized = optimize_model(
                str(raw),
                model_type="bert",
                num_heads=int(config["num_attention_heads"]),
                hidden_size=int(config["hidden_size"]),
            )
        out = _atomic_target(target)
        try:
            optimized.save_model_to_file(str(out))
            _publish(out, target)
        finally:
            out.unlink(missing_ok=True)
    finally:
        raw.unlink(missing_ok=True)


def quantize_int8(source: Path, target: Path) -> None:
    """Dynamic int8 weights (per output channel; activations quantised per batch at run time)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = _atomic_target(target)
    try:
        with _quiet("root"):  # "please consider pre-processing" advice, logged on every call
            quantize_dynamic(
                str(source),
                str(out),
                weight_type=QuantType.QInt8,
                per_channel=True,
                # The fused ops (Attention, SkipLayerNormalization) are in the com.microsoft domain, which
                # shape inference does not know: their outputs are float.
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
        _publish(out, target)
    finally:
        out.unlink(missing_ok=True)


@contextlib.contextmanager
def _quiet(logger: str):  # type: ignore[no-untyped-def]
    target = logging.getLogger(logger)
    level = target.level
    target.setLevel(logging.ERROR)
    try:
        yield
    finally:
        target.setLevel(level)


def ensure_exported(model_dir: Path, cache_dir: Path, int8: bool) -> tuple[Path, bool]:
    """The cached graph for these weights (exporting it first if absent) and whether this call exported."""
    folder = cache_dir / "onnx" / f"{model_dir.name}-{cache_key(model_dir)}"
    folder.mkdir(parents=True, exist_ok=True)
    fp32 = folder / "model.onnx"
    exported = False
    if not fp32.is_file():
        log.info("exporting %s to ONNX (once; cached in %s)", model_dir, folder)
        export_fp32(model_dir, fp32)
        exported = True
    if not int8:
        return fp32, exported
    quantized = folder / "model-int8.onnx"
    if not quantized.is_file():
        log.info("quantising %s to int8 (once; cached in %s)", model_dir.name, folder)
        quantize_int8(fp32, quantized)
        exported = True
    return quantized, exported


def _max_seq_length(model_dir: Path, fallback: int) -> int:
    config = model_dir / "sentence_bert_config.json"
    if config.is_file():
        return int(json.loads(config.read_text()).get("max_seq_length") or fallback)
    return fallback


class OnnxEncoder:
    """Tokenizer + ONNX Runtime session + mean pooling + normalisation: ``encode(texts) -> unit vectors``."""

    def __init__(self, model_dir: Path, cache_dir: Path, int8: bool = False, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise MissingPrerequisiteError(f"onnxruntime is not installed: {INSTALL_HINT}") from None
        from transformers import AutoTokenizer

        self.path, self.exported = ensure_exported(model_dir, cache_dir, int8)
        self.int8 = int8
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir), use_fast=True)
        self.max_length = _max_seq_length(model_dir, int(self.tokenizer.model_max_length))
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self._inputs = [i.name for i in self.session.get_inputs()]
        self.dim = int(json.loads((model_dir / "config.json").read_text())["hidden_size"])

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Unit vectors, float32, in input order (batches in order, as the caller gave them)."""
        out = [self._batch(texts[start : start + batch_size]) for start in range(0, len(texts), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, self.dim), dtype=np.float32)

    def _batch(self, texts: Sequence[str]) -> np.ndarray:
        encoded = self.tokenizer(
            [str(t).strip() for t in texts],  # sentence-transformers strips, too
            padding=True,
            truncation="longest_first",
            max_length=self.max_length,
            return_tensors="np",
        )
        feeds = {name: np.asarray(encoded[name], dtype=np.int64) for name in self._inputs}
        hidden = self.session.run(None, feeds)[0]
        mask = feeds["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        norms = np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return (pooled / norms).astype(np.float32)
