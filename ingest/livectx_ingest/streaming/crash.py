"""Crash points of the feature engine, for the exactly-once tests (:mod:`livectx.faults`).

``<env>=<phase>:<n>`` SIGKILLs the worker the n-th time it reaches ``phase``. The variable is read once,
here: with it unset, a crash point on the per-event path costs one attribute check and nothing else.
"""

from __future__ import annotations

import os

from livectx import faults


class CrashPoints:
    """Counts the phases reached and kills the process at the one ``env`` names."""

    def __init__(self, env: str) -> None:
        self._env = env
        self._hits: dict[str, int] = {}
        #: Whether ``env`` is set at all (read once: the per-event check stays free).
        self.armed = bool(os.environ.get(env))

    def reached(self, phase: str) -> None:
        if self.armed:
            faults.reached(self._env, phase, self._hits)
