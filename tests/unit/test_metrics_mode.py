"""prometheus_client stays in its one-process mode in livectx processes, though importing Feast sets the
multiprocess variables (livectx._metrics_mode): in the process that imports Feast, and in its children."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from livectx._metrics_mode import drop_feast_defaults

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import json, os, sys\n"
    "{before}\n"
    "import livectx\n"
    "{extra}\n"
    "import prometheus_client.values as values\n"
    "print(json.dumps([values.ValueClass.__name__, os.environ.get('PROMETHEUS_MULTIPROC_DIR')]))\n"
)


def _probe(extra: str = "", before: str = "", **env: str) -> tuple[str, str | None]:
    environ = {k: v for k, v in os.environ.items() if "multiproc" not in k.lower()} | env
    code = PROBE.format(extra=extra, before=before)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=environ, check=True
    ).stdout
    kind, folder = json.loads(out.strip().splitlines()[-1])
    return kind, folder


def test_only_feasts_own_temporary_folder_is_dropped() -> None:
    environ = {
        "PROMETHEUS_MULTIPROCESS_DIR": "/tmp/feast_metrics_ab12cd",
        "PROMETHEUS_MULTIPROC_DIR": "/tmp/feast_metrics_ab12cd/",
        "prometheus_multiproc_dir": "/srv/metrics",  # an operator's choice
        "OTHER": "feast_metrics_x",
    }
    assert drop_feast_defaults(environ) == ["PROMETHEUS_MULTIPROCESS_DIR", "PROMETHEUS_MULTIPROC_DIR"]
    assert environ == {"prometheus_multiproc_dir": "/srv/metrics", "OTHER": "feast_metrics_x"}


def test_a_process_that_imports_feast_keeps_one_process_metrics() -> None:
    kind, folder = _probe("import feast")
    assert folder is not None and "feast_metrics_" in folder  # what Feast's import does...
    assert kind == "MutexValue"  # ...changes nothing here


def test_a_child_of_such_a_process_drops_feasts_folder_but_keeps_an_operators() -> None:
    assert _probe(PROMETHEUS_MULTIPROC_DIR="/tmp/feast_metrics_zz9") == ("MutexValue", None)
    assert _probe(PROMETHEUS_MULTIPROC_DIR="/tmp/operator-metrics") == ("MmapedValue", "/tmp/operator-metrics")


def test_a_script_that_imported_prometheus_client_first_keeps_its_choice_and_runs() -> None:
    """Feast (or anything) imported before livectx chose the mmap store already: its folder stays, or
    every metric created later would fail to find its file."""
    extra = "from prometheus_client import Counter\nCounter('probe_total', 'p').inc()"
    kind, folder = _probe(extra, before="import feast")
    assert kind == "MmapedValue" and folder is not None and "feast_metrics_" in folder
