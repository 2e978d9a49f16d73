"""Load a Feast feature repo and compile what it declares into a :class:`Repo`.

The repo is read with Feast's own ``parse_repo`` (the code ``feast apply`` runs), so livectx sees exactly
the objects Feast registers. Repo modules import each other by plain name (``from entities import user``),
as Feast expects, so loading puts the repo first on ``sys.path`` and runs from inside it, then removes its
modules again: two repos (the example and a user's) can be loaded in one process without mixing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import os
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from livectx.errors import LivectxError
from livectx.repo.compile import (
    RepoError,
    compile_memory,
    compile_services,
    compile_source,
    compile_table_view,
    compile_view,
    declared_key,
    is_memory_view,
    is_table_view,
    source_name,
)
from livectx.repo.compiled import Repo
from livectx.repo.decisions import compile_decision
from livectx.repo.declare import GeneratorSpec
from livectx.repo.sources import SourceSpec
from livectx.repo.tenants import collect_tenants

_LOCK = threading.Lock()
_CACHE: dict[Path, Repo] = {}


def load_repo(path: Path | str, *, reload: bool = False) -> Repo:
    """The compiled repo at ``path`` (cached per path; ``reload`` reads it again).

    Raises:
        RepoError: the repo is missing, a module fails to import, or a declaration cannot run.
    """
    root = Path(path).resolve()
    with _LOCK:
        if not reload and root in _CACHE:
            return _CACHE[root]
        repo = _load(root)
        _CACHE[root] = repo
        # Loading imports Feast (pandas, pyarrow, protobuf: ~1M long-lived objects). Every later full
        # collection would walk them all: measured, a raw Kafka consumer in the same process fell from
        # ~600k to ~300k records/s. They live as long as the process, so they leave the collector's view.
        gc.collect()
        gc.freeze()
        return repo


def _load(root: Path) -> Repo:
    if not (root / "feature_store.yaml").is_file():
        raise RepoError(f"{root} is not a Feast repo (no feature_store.yaml): set --repo or LIVECTX_FEATURE_REPO")
    with _repo_imports(root) as modules:
        from feast.repo_operations import parse_repo

        try:
            with warnings.catch_warnings():  # Feast warns that stream views are "alpha"; livectx runs them itself
                warnings.filterwarnings("ignore", "Stream feature views are experimental", RuntimeWarning)
                contents = parse_repo(root)
        except LivectxError as exc:
            raise RepoError(f"{root}: {exc}") from None
        except Exception as exc:
            raise RepoError(f"loading the feature repo {root} failed: {type(exc).__name__}: {exc}") from None
        loaded = modules()
        generators = _generators(loaded)
        tenants = collect_tenants(loaded)
        order = _declaration_order(loaded)
    for kind in ("data_sources", "stream_feature_views", "feature_views", "feature_services", "entities"):
        getattr(contents, kind).sort(key=lambda obj: order.get(id(obj), len(order)))
    try:
        return dataclasses.replace(_compile(root, contents, generators), tenants=tenants)
    except LivectxError:
        raise
    except Exception as exc:  # a malformed livectx.* tag, a check that does not fit its column's type, ...
        raise RepoError(
            f"the feature repo {root} declares something livectx cannot read: {type(exc).__name__}: {exc}"
        ) from None


def _compile(root: Path, contents: Any, generators: dict[str, GeneratorSpec]) -> Repo:
    from feast import KafkaSource

    kafka = [s for s in contents.data_sources if isinstance(s, KafkaSource)]
    stream_views = list(contents.stream_feature_views)
    memory_views = [v for v in contents.feature_views if is_memory_view(v) and isinstance(v.stream_source, KafkaSource)]
    by_name: dict[str, list[Any]] = {}
    for source in kafka:
        by_name.setdefault(source_name(source), []).append(source)
    sources: dict[str, SourceSpec] = {}
    for name, declared in by_name.items():
        topics = {s.kafka_options.topic for s in declared}
        if len(topics) != 1:
            raise RepoError(f"source {name}: its copies name different topics {sorted(topics)}")
        sources[name] = compile_source(declared[0], _key_of(name, declared[0], stream_views, memory_views))
    _unique_topics(sources)
    groups, tables = [], []
    for view in stream_views:
        if not isinstance(view.stream_source, KafkaSource):
            raise RepoError(f"view {view.name}: livectx runs stream views over a KafkaSource")
        source = sources[source_name(view.stream_source)]
        if is_table_view(view, source):
            tables.append(compile_table_view(view, source))
        else:
            groups.append(compile_view(view, source))
    memory = {v.name: compile_memory(v, sources[source_name(v.stream_source)]) for v in memory_views}
    by_topic: dict[str, str] = {}
    for name, view in memory.items():
        if view.topic in by_topic:
            raise RepoError(
                f"memory views {by_topic[view.topic]} and {name} read one topic ({view.topic}): declare one"
            )
        by_topic[view.topic] = name
    services = compile_services(contents.feature_services, {g.name for g in groups})
    entities = {e.name: e.join_key for e in contents.entities if not e.name.startswith("__")}
    by_group = {g.name: g for g in groups}
    decisions = {}
    for service in contents.feature_services:
        spec = services[service.name]
        decision = compile_decision(service, spec.model_columns, sources, [by_group[v] for v in spec.views], RepoError)
        if decision is not None:
            decisions[service.name] = decision
    return Repo(
        root, _project(root), sources, tuple(groups), services, memory, generators, entities, decisions,
        tables=tuple(tables),
    )  # fmt: skip


def _key_of(name: str, source: Any, views: list[Any], memory: list[Any]) -> str:
    """The source's Kafka key: declared (``livectx.key``), else the one join key of the views reading it."""
    key = declared_key(source)
    if key:
        return key
    readers = [v for v in (*views, *memory) if source_name(v.stream_source) == name]
    keys = {c.name for v in readers for c in v.entity_columns}
    if len(keys) == 1:
        return keys.pop()
    raise RepoError(
        f"source {name}: say which field is the Kafka key (tags={{'livectx.key': FIELD}}, or livectx's stream_source): "
        f"its views are keyed by {sorted(keys) or 'nothing'}"
    )


def _unique_topics(sources: dict[str, SourceSpec]) -> None:
    seen: dict[str, str] = {}
    for spec in sources.values():
        if spec.topic in seen:
            raise RepoError(f"sources {seen[spec.topic]} and {spec.name} both read topic {spec.topic}: declare one")
        seen[spec.topic] = spec.name


def _declaration_order(modules: list[Any]) -> dict[int, int]:
    """Objects by where they are declared (module import order, then line order): Feast lists them sorted
    by name, but people read views and services in the order they wrote them."""
    order: dict[int, int] = {}
    for module in modules:
        for value in vars(module).values():
            order.setdefault(id(value), len(order))
    return order


def _generators(modules: list[Any]) -> dict[str, GeneratorSpec]:
    found: dict[str, GeneratorSpec] = {}
    for module in modules:
        for value in vars(module).values():
            spec = getattr(value, "__livectx_generator__", None)
            if isinstance(spec, GeneratorSpec):
                if spec.name in found and found[spec.name].function is not spec.function:
                    raise RepoError(f"two generators are named {spec.name!r}")
                found[spec.name] = spec
    return found


def _project(root: Path) -> str:
    import yaml

    with (root / "feature_store.yaml").open() as fh:
        config = yaml.safe_load(fh) or {}
    return str(config.get("project", "livectx"))


@contextlib.contextmanager
def _repo_imports(root: Path) -> Iterator[Any]:
    """Import the repo's modules by plain name from inside it, then forget them (see the module doc)."""
    before = set(sys.modules)
    cwd = os.getcwd()
    sys.path.insert(0, str(root))

    def modules() -> list[Any]:
        """The repo's modules imported so far, in import order."""
        return [m for n, m in sys.modules.items() if n not in before and _inside(m, root)]

    try:
        os.chdir(root)
        yield modules
    finally:
        os.chdir(cwd)
        with contextlib.suppress(ValueError):
            sys.path.remove(str(root))
        for name in [n for n in sys.modules if n not in before and _inside(sys.modules[n], root)]:
            del sys.modules[name]


def _inside(module: Any, root: Path) -> bool:
    file = getattr(module, "__file__", None)
    return bool(file) and Path(file).resolve().is_relative_to(root)
