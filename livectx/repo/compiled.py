"""The compiled repo: what a feature repo declares, as the workers run it.

Kept apart from :mod:`livectx.repo.loader` (which reads the repo with Feast) so that a process given a
compiled repo (:mod:`livectx.repo.snapshot`) runs it without importing Feast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from livectx.errors import LivectxError, UnknownNameError

if TYPE_CHECKING:
    from livectx.cdc.changelog import ChangelogGroup
    from livectx.events import Event
    from livectx.features.spec import FeatureGroup
    from livectx.repo.decisions import DecisionSpec
    from livectx.repo.declare import GeneratorSpec
    from livectx.repo.sources import SourceSpec
    from livectx.repo.tenants import TenantSpec
    from livectx.topics import TopicSpec
    from livectx.vectors.sources import TextSource


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    views: tuple[str, ...]
    description: str = ""
    #: What a model reads from this service by default (the ``livectx.model_columns`` tag, comma-separated).
    model_columns: tuple[str, ...] = ()


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


def _named(declared: dict[str, Any], name: str, what: str, error: type[LivectxError] = LivectxError) -> Any:
    """``declared[name]``, or one readable error naming what the repo does declare."""
    try:
        return declared[name]
    except KeyError:
        raise error(f"unknown {what} {name!r}; the repo declares: {', '.join(sorted(declared)) or 'none'}") from None


def _names(groups: tuple[FeatureGroup, ...]) -> str:
    return ", ".join(g.name for g in groups) or "none"
