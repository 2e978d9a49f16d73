"""Keep ``prometheus_client`` in its ordinary (one process) mode, whatever Feast's import does.

Importing ``feast`` imports ``feast.metrics``, which sets ``PROMETHEUS_MULTIPROCESS_DIR`` and
``PROMETHEUS_MULTIPROC_DIR`` to a fresh ``feast_metrics_*`` temporary folder when they are unset (for
its feature server's pre-fork workers). ``prometheus_client`` picks its value store once, when it is first
imported: with those set, every metric of the process lives in mmap files under that folder, and each
update costs about 2.7 times as much (measured: 2.75 us an ``observe``, against 1.09). A livectx worker
imports Feast to load its repo, and every process it starts inherits the variables.

livectx's processes each serve their own metrics, so: variables that point at a ``feast_metrics_*``
folder (Feast's default, not an operator's choice) are dropped, and ``prometheus_client`` is imported
now, before Feast can set them. An operator who sets a folder of their own keeps the multiprocess mode.
Where ``prometheus_client`` was imported before livectx (a script that imports Feast first), it has
chosen already: the variables are then in use (its values find their files through them) and stay.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

FEAST_PREFIX = "feast_metrics_"
VARIABLES = ("PROMETHEUS_MULTIPROCESS_DIR", "PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir")


def drop_feast_defaults(environ: MutableMapping[str, str] = os.environ) -> list[str]:
    """Remove the variables that name Feast's own temporary folder; returns their names."""
    dropped = [v for v in VARIABLES if os.path.basename(environ.get(v, "").rstrip("/")).startswith(FEAST_PREFIX)]
    for name in dropped:
        del environ[name]
    return dropped


if "prometheus_client.values" not in sys.modules:
    drop_feast_defaults()
import prometheus_client.values  # noqa: E402, F401 - the value store is chosen here, before Feast's import
