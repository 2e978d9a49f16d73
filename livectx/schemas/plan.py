"""``schemas plan | apply | check``: the declared schemas against what the registry holds.

Per subject, the plan says one of:

- ``new``: nothing registered yet; ``apply`` sets the level and registers version 1;
- ``unchanged``: the registry already holds this schema (and the level, if ``compatibility`` says so);
- ``new version``: the registry's test passes; ``apply`` registers it;
- ``INCOMPATIBLE``: the registry's test fails; ``problems`` holds one readable line per field
  (:mod:`livectx.schemas.explain`), and ``apply`` touches nothing of that subject.

The registry's compatibility test is the verdict. It runs under the level the subject has *now*, so when
the declaration changes the level the plan compares the schemas under the declared level itself, and
``apply`` sets the new level first and asks the registry before it registers anything (putting the old
level back if the answer is no).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from livectx.schemas.client import Registry
from livectx.schemas.derive import DeclaredSchema
from livectx.schemas.explain import reasons

NEW, UNCHANGED, NEW_VERSION, INCOMPATIBLE = "new", "unchanged", "new version", "INCOMPATIBLE"
REGISTERED, REFUSED = "registered", "refused"


@dataclass(frozen=True)
class SchemaChange:
    subject: str
    source: str
    action: str  # NEW | UNCHANGED | NEW_VERSION | INCOMPATIBLE; after apply also REGISTERED | REFUSED
    compatibility: str  # the declared level, or "OLD -> NEW" when apply changes it
    detail: str = ""
    problems: tuple[str, ...] = field(default=())

    @property
    def level_changes(self) -> bool:
        return "->" in self.compatibility


def plan(registry: Registry, declared: Iterable[DeclaredSchema]) -> list[SchemaChange]:
    return [plan_one(registry, d) for d in declared]


def plan_one(registry: Registry, declared: DeclaredSchema) -> SchemaChange:
    subject = declared.subject
    current = registry.compatibility(subject)
    level = (
        declared.compatibility
        if current == declared.compatibility
        else f"{current or 'default'} -> {declared.compatibility}"
    )
    change = SchemaChange(subject, declared.source, NEW, level)
    versions = registry.versions(subject)
    if not versions:
        return replace(change, detail=f"{declared.schema_type} schema, version 1")
    latest = versions[-1][0]
    found = registry.find(subject, declared.schema_type, declared.schema_str)
    if found is not None:
        note = f"version {found}" + (f" (latest is {latest})" if found != latest else "")
        return replace(change, action=UNCHANGED, detail=note)
    problems = _problems(declared, versions, declared.compatibility)
    if change.level_changes:
        # The registry tests under the level it has now, which apply is about to change: judge by the
        # declared level here (apply asks the registry again once it has set it).
        ok, messages = not problems, []
    else:
        ok, messages = registry.test(subject, declared.schema_type, declared.schema_str)
    if ok:
        return replace(change, action=NEW_VERSION, detail=f"version {latest + 1} (compatible, {_level(change)})")
    lines = problems or [*messages] or [f"the registry reports it incompatible under {_level(change)}"]
    return replace(
        change,
        action=INCOMPATIBLE,
        detail=f"not compatible under {_level(change)}",
        problems=tuple(f"{subject}: {line}" for line in lines),
    )


def apply(registry: Registry, declared: Iterable[DeclaredSchema]) -> list[SchemaChange]:
    """Make the registry hold the declared schemas. Idempotent; an incompatible subject is left as it is."""
    return [apply_one(registry, d) for d in declared]


def apply_one(registry: Registry, declared: DeclaredSchema) -> SchemaChange:
    change = plan_one(registry, declared)
    subject = declared.subject
    if change.action == INCOMPATIBLE:
        return replace(change, action=REFUSED, detail="nothing registered: " + change.detail)
    previous = registry.compatibility(subject)
    if change.level_changes:
        registry.set_compatibility(subject, declared.compatibility)
    if change.action == UNCHANGED:
        return change
    if change.action == NEW_VERSION and change.level_changes:
        ok, messages = registry.test(subject, declared.schema_type, declared.schema_str)
        if not ok:
            registry.set_compatibility(subject, previous)
            lines = messages or [f"the registry reports it incompatible under {declared.compatibility}"]
            return replace(
                change,
                action=REFUSED,
                detail=f"nothing registered: not compatible under {declared.compatibility}",
                problems=tuple(f"{subject}: {line}" for line in lines),
            )
    schema_id, version = registry.register(subject, declared.schema_type, declared.schema_str)
    return replace(change, action=REGISTERED, detail=f"version {version}, schema id {schema_id}")


def problems_of(changes: Iterable[SchemaChange]) -> list[str]:
    return [line for change in changes for line in change.problems]


def _problems(declared: DeclaredSchema, versions: list[tuple[int, dict]], level: str | None) -> list[str]:
    """Field-level reasons against the versions the level compares with (all of them when transitive)."""
    if level is None or level == "NONE":
        return []
    against = versions if level.endswith("_TRANSITIVE") else versions[-1:]
    found: list[str] = []
    for _, old in reversed(against):  # newest first: the most relevant reason comes first
        found += reasons(declared.schema_type, old, declared.schema, level)
    return list(dict.fromkeys(found))


def _level(change: SchemaChange) -> str:
    return change.compatibility.split("->")[-1].strip()


def schema_json(declared: DeclaredSchema) -> str:
    """The schema as ``schemas show`` prints it."""
    return json.dumps(declared.schema, indent=2)
