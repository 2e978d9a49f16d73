"""The notebooks run top to bottom against the local stack on small data (nbclient, kernel ``python3``), in
order, with names unique to the run (``LIVECTX_NB_PREFIX``) and an archive under ``tmp_path``; each must
finish without error and show its key outputs."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def _run(name: str) -> list[str]:
    book = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert all(not c.get("outputs") for c in book.cells if c.cell_type == "code"), f"{name} is stored with outputs"
    NotebookClient(book, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    texts = []
    for cell in book.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", "") + str(output.get("data", {}).get("text/plain", "")))
            if "image/png" in output.get("data", {}):
                texts.append("<png>")
    return texts


def test_notebooks_run_in_order(stack, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LIVECTX_NB_PREFIX", unique)
    monkeypatch.setenv("LIVECTX_NB_EVENTS", os.environ.get("LIVECTX_NB_EVENTS", "8000"))
    monkeypatch.setenv("LIVECTX_TIER_URL", str(tmp_path / "tier"))

    explore = "\n".join(_run("01_explore_features_and_archive.ipynb"))
    assert "8,000 records archived" in explore
    assert "txn_count_5m" in explore and "distinct_ips_10m" in explore  # the feature views
    assert "transaction" in explore and "login" in explore  # the archive, by event type

    train = "\n".join(_run("02_training_set_and_model.ipynb"))
    assert "labelled payments" in train and "nbfraud:v1" in train and "nbfraud:v2" in train

    backtested = _run("03_backtest_versions.ipynb")
    text = "\n".join(backtested)
    assert "nbfraud:v2" in text and "decisions differ" in text
    assert backtested.count("<png>") == 3
