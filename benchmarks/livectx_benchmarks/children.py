"""A run's child processes, as ``bench soak`` and the live ``bench attack`` keep them.

Both run the workers and the agent as production runs them, each its own process (a ``livectx`` command or
a spawned function), each logging to its own file. While the bench waits on them, a child that has died
must fail it at once with the tail of that log, not make it wait out its deadline; at the end every child
is stopped as production stops it. One object holds the processes, their logs and the spawn context.
"""

from __future__ import annotations

import multiprocessing
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from livectx.offsets import wait_for_caught_up
from livectx.settings import Settings
from livectx_benchmarks import soak_procs


class Children:
    """The processes of ``what`` (``"the soak"``) by name, in the order they were started, their logs in a
    new folder named ``prefix...``, and the ``spawn`` context their shared events and counters come from."""

    def __init__(self, what: str, prefix: str) -> None:
        self.what = what
        self.spawn = multiprocessing.get_context("spawn")
        self.logs = Path(tempfile.mkdtemp(prefix=prefix))
        self.running: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        return self.running[name]

    def command(self, name: str, command: list[str], env: Mapping[str, str]) -> None:
        """Start ``command`` (no input), its output to ``<logs>/<name>.log``."""
        log = (self.logs / f"{name}.log").open("ab")
        self.running[name] = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )

    def process(self, name: str, target: Any, *args: Any) -> None:
        """Start ``target(*args)`` in a spawned daemon process (a fresh interpreter, as a command has)."""
        process = self.spawn.Process(target=target, args=args, daemon=True)
        process.start()
        self.running[name] = process

    def log(self, name: str) -> str:
        """What ``name`` has written to its log (its closing table, once it has stopped)."""
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def check_alive(self) -> None:
        """Raise, with the tail of its log, when a child has exited."""
        soak_procs.check_alive(self.running, self.logs, self.what)

    def wait_caught_up(
        self, settings: Settings, group: str, targets: dict[tuple[str, int], int], deadline: float, failure: str
    ) -> None:
        """Until ``group`` has committed ``targets``, checking the children every 2 s; ``failure`` is raised
        once ``deadline`` (a ``time.monotonic``) has passed."""
        while not wait_for_caught_up(settings, group, targets, timeout_s=2):
            self.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(failure)

    def wait_set(self, event: Any, deadline: float, failure: str) -> None:
        """Until ``event`` is set, checking the children every second; ``failure`` once ``deadline`` passed."""
        while not event.wait(1):
            self.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(failure)

    def end_all(self) -> None:
        """Stop every child as production stops it (SIGTERM, then a kill after a grace period)."""
        for child in self.running.values():
            soak_procs.end_child(child)
