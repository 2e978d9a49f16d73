"""A loaded repo, pickled for worker processes, so that they need not load it again.

Loading a feature repo imports Feast (about 7 s on a 2-core machine) and runs the repo's files. A spawned
worker that only runs the engine's window code needs neither: the parent, which has loaded the repo
already, writes its compiled declarations (:class:`~livectx.repo.compiled.Repo`) to a file, and the worker
reads them with plain :func:`pickle.load`, importing no Feast.

Two things pickle cannot do alone, done here:

- the event models a repo declares are classes built at run time (pydantic's ``create_model``), which
  pickle cannot name: each travels as its declaration and is built again by the same
  :func:`~livectx.repo.schema.event_model`. Pickle's memo builds each model once per file, so identity
  tests such as ``group.event_type is model`` hold in the worker as in the parent;
- what the repo's own files define (generators' callables) is not importable by name in another process:
  only what the engine's workers read is kept (sources, views, services, entities, decisions).
"""

from __future__ import annotations

import dataclasses
import pickle
from typing import IO, TYPE_CHECKING, Any

from livectx.repo.schema import declaration, event_model, is_declared

if TYPE_CHECKING:
    from livectx.repo.compiled import Repo


class RepoPickler(pickle.Pickler):
    """A pickler that sends each declared event model as its declaration (:func:`pickle.load` reads it)."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, type) and is_declared(obj):
            return _rebuild, (declaration(obj),)
        return NotImplemented


def _rebuild(arguments: dict[str, Any]) -> type:
    return event_model(**arguments)


def engine_part(repo: Repo) -> Repo:
    """What a worker of the window engine reads of ``repo``: its sources, views, services, entities and
    decisions (no generators, memory views, tenants or table views)."""
    return dataclasses.replace(repo, memory={}, generators={}, tenants={}, tables=())


def write_snapshot(repo: Repo, file: IO[bytes]) -> None:
    """Write :func:`engine_part` of ``repo`` to ``file``, for :func:`read_snapshot` in another process."""
    RepoPickler(file, protocol=pickle.HIGHEST_PROTOCOL).dump(engine_part(repo))


def read_snapshot(file: IO[bytes]) -> Repo:
    """The repo :func:`write_snapshot` wrote (written by this run's own parent process: pickle runs code)."""
    repo: Repo = pickle.load(file)
    return repo
