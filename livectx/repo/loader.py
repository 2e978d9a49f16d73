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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from livectx.cdc.changelog import ChangelogGroup
from livectx.errors import LivectxError, UnknownNameError
from livectx.events import Event
from livectx.features.spec import FeatureGroup
from livectx.repo.compile import (
    RepoError,
    ServiceSpec,
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
from livectx.repo.decisions import DecisionSpec, compile_decision
from livectx.repo.declare import GeneratorSpec
from livectx.repo.sources import SourceSpec
from livectx.repo.tenants import TenantSpec, collect_tenants
from livectx.topics import TopicSpec
from livectx.vectors.sources import TextSource

_LOCK = threading.Lock()
_CACHE: dict[Path, Repo] = {}


@dataclass(frozen=True)
class Repo:
    """What a feature repo declares, as the workers run it."""

    path: Path
    project: str
    sources: dict[str, SourceSpec]
    groups: tuple[FeatureGroup, ...]
    services: dict[str, ServiceSpec]
    memory: dict[str, TextSource]
    generators: dict[str, GeneratorSpec]
    entities: dict[str, str] = field(default_factory=dict)  # entity name -> join key
    decisions: dict[str, DecisionSpec] = field(default_factory=dict)  # by feature service
    tenants: dict[str, TenantSpec] = field(default_factory=dict)  # livectx.repo.tenants declarations
    #: Views over captured tables' current rows (:func:`livectx.repo.cdc.table_view`), beside ``groups``.
    tables: tuple[ChangelogGroup, ...] = ()

    def decision(self, service: str | None = None) -> DecisionSpec:
        """The decision declared on feature service ``service``; without a name, the repo's only one.

        Raises:
            LivectxError: no such decision, or (without a name) none or several (one line, naming them).
        """
        if service is None:
            if len(self.decisions) == 1:
                return next(iter(self.decisions.values()))
            declared = ", ".join(self.decisions) or "none"
            raise LivectxError(
                f"name the decision service (--features SERVICE): the repo {self.path} declares "
                f"{'several' if self.decisions else 'none'} (decision services: {declared})"
            )
        if service in self.services and service not in self.decisions:
            raise LivectxError(
                f"feature service {service} declares no decision: declare it with livectx.repo.declare's "
                f"decision_service(..., scores=SOURCE, id_field=FIELD); decision services: "
                f"{', '.join(self.decisions) or 'none'}"
            )
        return _named(self.decisions, service, "decision service")

    def group(self, name: str) -> FeatureGroup:
        for group in self.groups:
            if group.name == name:
                return group
        raise LivectxError(f"no stream feature view {name!r} in {self.path}; declared: {_names(self.groups)}")

    def service_views(self, service: str) -> tuple[str, ...]:
        return _named(self.services, service, "feature service").views

    def service_groups(self, service: str) -> list[FeatureGroup]:
        return [self.group(v) for v in self.service_views(service)]

    def source(self, name: str) -> SourceSpec:
        return _named(self.sources, name, "source")

    def model(self, source: str) -> type[Event]:
        return self.source(source).model

    def source_for_topic(self, topic: str) -> SourceSpec | None:
        for spec in self.sources.values():
            if spec.topic == topic:
                return spec
        return None

    def event_type(self, schema_name: str) -> type[Event] | None:
        """The model named by a ``livectx-schema`` header's name: a source's, or a platform event's."""
        from livectx.events import PLATFORM_EVENTS

        spec = self.sources.get(schema_name)
        return spec.model if spec is not None else PLATFORM_EVENTS.get(schema_name)

    def model_for_topic(self, topic: str) -> type[Event] | None:
        from livectx.events import PLATFORM_EVENTS
        from livectx.topics import DECISIONS

        spec = self.source_for_topic(topic)
        if spec is not None:
            return spec.model
        return PLATFORM_EVENTS["decision"] if topic == DECISIONS else None

    @property
    def text_sources(self) -> dict[str, TextSource]:
        """Memory views by topic (the embedding worker consumes topics)."""
        return {t.topic: t for t in self.memory.values()}

    def memory_view(self, name: str) -> TextSource:
        return _named(self.memory, name, "memory view")

    def topic_specs(self) -> tuple[TopicSpec, ...]:
        return tuple(s.topic_spec() for s in self.sources.values())

    def tenant(self, name: str) -> TenantSpec:
        return _named(self.tenants, name, "tenant", UnknownNameError)

    def generator(self, name: str) -> GeneratorSpec:
        return _named(self.generators, name, "generator", UnknownNameError)


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


def _named(declared: dict[str, Any], name: str, what: str, error: type[LivectxError] = LivectxError) -> Any:
    """``declared[name]``, or one readable error naming what the repo does declare."""
    try:
        return declared[name]
    except KeyError:
        raise error(f"unknown {what} {name!r}; the repo declares: {', '.join(sorted(declared)) or 'none'}") from None


def _names(groups: tuple[FeatureGroup, ...]) -> str:
    return ", ".join(g.name for g in groups) or "none"
