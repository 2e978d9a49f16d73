"""File-based service discovery: a process serving ``/metrics`` tells the stack's Prometheus where it is.

Workers come and go on ports chosen at run time, so a static scrape config cannot know them. Instead each
process that serves ``/metrics`` writes ``<state dir>/prometheus/targets/<name>.json`` in Prometheus'
``file_sd`` format and removes it when it exits; Prometheus watches the folder and starts or stops
scraping within seconds. The file is written whether or not Prometheus runs (it costs one small file, and
a Prometheus started later picks up the workers already running). A process killed with SIGKILL leaves
its file behind: Prometheus then reports that target down (``up == 0``) until the file is removed or the
worker restarts under the same name and rewrites it.

Target labels never reuse a metric's own label names (``group``, ``worker``...): Prometheus would rename
the scraped ones to ``exported_*`` and break the rules' and dashboard's queries. They are ``job``,
``consumer_group`` and ``worker_id``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

from livectx.settings import Settings

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def targets_dir(settings: Settings) -> Path:
    """The folder the stack's Prometheus watches (``file_sd_configs``)."""
    return settings.stack.state_dir / "prometheus" / "targets"


def target_file(settings: Settings, name: str) -> Path:
    """Where ``name``'s registration lives; the name is made filename-safe (groups may contain ``/``)."""
    return targets_dir(settings) / f"{_UNSAFE.sub('_', name).strip('_') or 'target'}.json"


def register_target(settings: Settings, name: str, port: int, labels: dict[str, str], host: str = "127.0.0.1") -> Path:
    """Write (atomically: Prometheus never reads half a file) ``name``'s target file. Returns its path."""
    path = target_file(settings, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = [{"targets": [f"{host}:{port}"], "labels": {k: str(v) for k, v in labels.items()}}]
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # not *.json: Prometheus ignores it
    tmp.write_text(json.dumps(body, indent=2) + "\n")
    tmp.replace(path)
    log.info("registered %s:%d for Prometheus in %s", host, port, path)
    return path


def unregister_target(path: Path | None) -> None:
    """Remove a registration (missing is fine: ``stack down --purge`` may have removed the folder)."""
    if path is not None:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def registered_target(
    settings: Settings, name: str, port: int | None, labels: dict[str, str], host: str = "127.0.0.1"
) -> Iterator[Path | None]:
    """Registered while the block runs; nothing at all when there is no ``/metrics`` (``port`` 0/None).
    A server bound to every interface (``0.0.0.0``, ``::``) is scraped on the loopback address."""
    if not port or port <= 0:
        yield None
        return
    path = None
    try:
        scrape_host = "127.0.0.1" if host in {"", "0.0.0.0", "::"} else host
        path = register_target(settings, name, port, labels, scrape_host)
    except OSError as exc:  # monitoring is an extra: a read-only state dir must not stop a worker
        log.warning("could not register the metrics endpoint for Prometheus: %s", exc)
    try:
        yield path
    finally:
        unregister_target(path)
