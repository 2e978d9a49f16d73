"""The agent-facing tools over one :class:`~livectx_agents.context.ContextClient`, written once.

Each public method is a tool: typed parameters with descriptions written for a model to read, and a
JSON-ready result. The MCP server (:mod:`.mcp_server`) and the framework adapters (:mod:`.openai_agents`,
:mod:`.langchain`) register these same bound methods, so every surface has the same schema, the same budget
semantics and the same errors: a bad name or argument raises :class:`~livectx.errors.LivectxError` with one
line that says what is known, which each surface hands back to the model as a tool error.

No ``from __future__ import annotations`` here: the frameworks read these signatures through wrappers
defined in other modules, so the annotations must be objects, not strings to resolve in this module.
"""

import functools
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from livectx.errors import LivectxError
from livectx.vectors.records import VectorFilter

if TYPE_CHECKING:
    from livectx_agents.context import ContextClient

MAX_WAIT_MS = 30_000.0
POLL_S = 0.01

Entities = Annotated[
    list[str],
    Field(description="Ids of the feature service's entity, e.g. user ids ('u42'). At most 1000.", max_length=1000),
]
Service = Annotated[
    str | None,
    Field(description="A feature service name from list_feature_services; omit when the repo declares only one."),
]
Budget = Annotated[
    float | None,
    Field(
        description="Latency budget in milliseconds for the whole call (default: the server's, 50 ms). Parts "
        "that cannot answer in time are left out and named in 'degraded'; the call still returns on time.",
        gt=0,
        le=60_000,
    ),
]
MemoryView = Annotated[
    str | None, Field(description="Search only this memory view (see list_feature_services); omit for all.")
]
Tenant = Annotated[str | None, Field(description="Only items of this tenant.")]
Categories = Annotated[list[str] | None, Field(description="Only items in any of these categories.")]
TopK = Annotated[int, Field(description="How many similar items to return, best first.", ge=1, le=100)]


class ContextTools:
    """The tools of one process (see the module doc). ``sleep`` is injected for tests."""

    def __init__(
        self,
        client: "ContextClient",
        descriptions: dict[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self._descriptions = descriptions or {}
        self._sleep = sleep

    @classmethod
    def from_repo(cls, client: "ContextClient") -> "ContextTools":
        """With the feature services' descriptions from the configured repo."""
        from livectx.repo import current_repo

        return cls(client, {name: spec.description for name, spec in current_repo().services.items()})

    def tools(self) -> list[Callable[..., dict[str, Any]]]:
        """Every tool, in the order a model should consider them."""
        return [self.get_context, self.search_memory, self.get_features, self.list_feature_services,
                self.wait_until_fresh]  # fmt: skip

    def get_context(
        self,
        entities: Entities | None = None,
        feature_service: Service = None,
        query: Annotated[
            str | None, Field(description="Text to find similar items for in the semantic memory.", max_length=8000)
        ] = None,
        memory_view: MemoryView = None,
        top_k: TopK = 5,
        tenant: Tenant = None,
        categories: Categories = None,
        budget_ms: Budget = None,
    ) -> dict[str, Any]:
        """Everything known about some entities, in one call within a latency budget: their fresh features,
        the items most similar to a query from the semantic memory, and how fresh each part is (feature ages
        in ms since the newest event; the memory index's lag). Prefer this over calling get_features and
        search_memory separately. 'degraded' lists any part that could not be served in time."""
        if not entities and query is None:
            raise LivectxError("nothing to fetch: give entities, a query, or both")
        context = self.client.get_context(
            entities or [],
            feature_service,
            memory_view=memory_view,
            query_text=query,
            top_k=top_k,
            filters=_filter(tenant, categories),
            budget_ms=budget_ms,
        )
        return context.to_dict()

    def search_memory(
        self,
        query: Annotated[
            str, Field(description="What to look for, in natural language.", min_length=1, max_length=8000)
        ],
        memory_view: MemoryView = None,
        top_k: TopK = 5,
        tenant: Tenant = None,
        categories: Categories = None,
        budget_ms: Budget = None,
    ) -> dict[str, Any]:
        """Items of the semantic memory most similar to a query (cosine similarity, 1.0 = same meaning), with
        their text, source, category, event time and metadata, and the index's freshness."""
        context = self.client.get_context(
            [], memory_view=memory_view, query_text=query, top_k=top_k, filters=_filter(tenant, categories),
            budget_ms=budget_ms,
        )  # fmt: skip
        return {
            "similar": context.to_dict()["similar"],
            "freshness": context.freshness["vector_index"],
            "degraded": context.degraded,
            "elapsed_ms": context.elapsed_ms,
        }

    def get_features(
        self, entities: Entities, feature_service: Service = None, budget_ms: Budget = None
    ) -> dict[str, Any]:
        """The current feature values of some entities from one feature service, and their age in ms per
        feature view (time since the newest event that updated it). Missing values are the declared
        defaults."""
        if not entities:
            raise LivectxError("give at least one entity id")
        context = self.client.get_context(entities, feature_service, budget_ms=budget_ms)
        return {
            "features": context.features,
            "freshness": context.freshness["features"],
            "degraded": context.degraded,
            "elapsed_ms": context.elapsed_ms,
        }

    def list_feature_services(self) -> dict[str, Any]:
        """The feature services and memory views this deployment declares: names, descriptions, and each
        service's features with their types and descriptions. Call it first to learn what can be asked."""
        return {
            "feature_services": {name: self.feature_service_schema(name) for name in sorted(self.client.services)},
            "memory_views": sorted(self.client.memory_sources),
        }

    def feature_service_schema(self, name: str) -> dict[str, Any]:
        """One feature service: its description, entity key, and per view the window and features."""
        groups = self.client.services.get(name)
        if groups is None:
            raise LivectxError(f"unknown feature service {name!r}; known: {', '.join(sorted(self.client.services))}")
        return {
            "name": name,
            "description": self._descriptions.get(name, ""),
            "entity_key": groups[0].entity_key if groups else None,
            "views": [
                {
                    "name": g.name,
                    "window": {"kind": g.window.kind, "size_s": g.window.size.total_seconds()},
                    "features": [
                        {"name": f.name, "type": f.dtype, "aggregation": f.aggregation, "description": f.description}
                        for f in g.features
                    ],
                }
                for g in groups
            ],
        }

    def wait_until_fresh(
        self,
        entities: Entities,
        after: Annotated[
            str | float,
            Field(
                description="An event time: ISO 8601 with a time zone ('2026-12-01T10:00:00Z') or epoch "
                "milliseconds. Waits until every entity's features reflect events at least this recent."
            ),
        ],
        feature_service: Service = None,
        timeout_ms: Annotated[
            float, Field(description="Give up after this long (at most 30000 ms).", gt=0, le=MAX_WAIT_MS)
        ] = 2_000.0,
    ) -> dict[str, Any]:
        """Read-your-writes: wait, at most timeout_ms, until each entity's features have absorbed its events
        up to a given event time (e.g. of an event just produced), then return those features. 'fresh' says
        whether they did in time; 'behind' lists the entities that did not."""
        if not entities:
            raise LivectxError("give at least one entity id")
        target_ms = _epoch_ms(after)
        began = time.monotonic()
        while True:
            context = self.client.get_context(entities, feature_service)
            newest = context.freshness["newest_event_ms"]
            behind = [
                e for e in entities if max((t for t in newest[e].values() if t is not None), default=-1) < target_ms
            ]
            waited_ms = (time.monotonic() - began) * 1000
            if not behind or waited_ms >= timeout_ms:
                return {
                    "fresh": not behind,
                    "behind": behind,
                    "waited_ms": waited_ms,
                    "features": context.features,
                    "freshness": context.freshness["features"],
                    "degraded": context.degraded,
                }
            self._sleep(min(POLL_S, max(0.0, (timeout_ms - waited_ms) / 1000)))  # bounded polling


def _filter(tenant: str | None, categories: list[str] | None) -> VectorFilter | None:
    if tenant is None and not categories:
        return None
    return VectorFilter(tenant, tuple(categories or ()))


def _newest(times: dict[str, int | None]) -> float:
    """The newest event time across an entity's views (-inf when none holds a row)."""
    return max((t for t in times.values() if t is not None), default=float("-inf"))


def _epoch_ms(value: str | float) -> float:
    if isinstance(value, int | float):
        return float(value)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise LivectxError(f"after={value!r}: give an ISO 8601 time with a zone or epoch milliseconds") from None
    if parsed.tzinfo is None:
        raise LivectxError(f"after={value!r} has no time zone: add one, e.g. 'Z' or '+00:00'")
    return parsed.timestamp() * 1000


def livectx_errors_as(
    tool_error: Callable[[str], Exception], fn: Callable[..., Any], crashes: logging.Logger | None = None
) -> Callable[..., Any]:
    """``fn`` (a tool) with a livectx error raised as ``tool_error(message)``: the framework's tool error,
    whose message reaches the model. With ``crashes``, any other exception is logged there with its
    traceback before it propagates."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LivectxError as exc:
            raise tool_error(str(exc)) from None
        except Exception:
            if crashes is not None:
                crashes.exception("tool %s crashed", fn.__name__)
            raise

    return call
