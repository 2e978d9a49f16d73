"""The fast read path: online features straight from Feast's Redis layout, one pipelined round trip.

Feast's ``get_online_features`` costs 2-4x a raw Redis read here (protobuf responses, per-call registry
lookups, per-view round trips). This reader resolves feature services from the feature repo's
declarations (:mod:`livectx.repo`, no registry round trip), reads every view of every entity with one pipelined
``HMGET`` batch, and decodes values exactly as Feast does; tests prove it returns what
``FeatureStore.get_online_features`` returns for every feature view. Feast's SDK stays the reference path.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from livectx.errors import LivectxError
from livectx.features.redis_layout import FeastRedisLayout
from livectx.features.spec import FeatureGroup
from livectx.settings import Settings


class OnlineFeatureReader:
    def __init__(
        self,
        client: Any,
        project: str = "livectx",
        entity_key_serialization_version: int = 3,
        groups: Sequence[FeatureGroup] | None = None,
        services: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        if groups is None or services is None:
            from livectx.repo import current_repo

            repo = current_repo()
            groups = repo.groups if groups is None else groups
            services = {n: s.views for n, s in repo.services.items()} if services is None else services
        self.services = {name: tuple(views) for name, views in services.items()}
        self._client = client
        self.layouts = {g.name: FeastRedisLayout(project, g, entity_key_serialization_version) for g in groups}
        self._plans: dict[tuple[str, ...], list[tuple[FeastRedisLayout, list[str]]]] = {}
        # Redis Cluster spreads keys over nodes: its pipeline routes each command; a single node gets the
        # leaner direct pipelining.
        self._execute: Callable[[list[tuple[Any, ...]]], list[Any]] = (
            functools.partial(_with_pipeline, client)
            if not hasattr(client, "connection_pool")
            else functools.partial(_pipelined, client)
        )

    @classmethod
    def from_settings(cls, settings: Settings, client: Any | None = None) -> OnlineFeatureReader:
        from livectx.redis_client import redis_client
        from livectx.repo import current_repo

        repo = current_repo(settings)
        project, eksv = feature_store_identity(settings.feature_repo)
        services = {n: s.views for n, s in repo.services.items()}
        return cls(client or redis_client(settings), project, eksv, repo.groups, services)

    def plan(self, features: str | Sequence[str]) -> list[tuple[FeastRedisLayout, list[str]]]:
        """The views and columns to read for a service name or ``view:feature`` references (memoised)."""
        key = (features,) if isinstance(features, str) else tuple(features)
        plan = self._plans.get(key)
        if plan is not None:
            return plan
        wanted: dict[str, list[str]] = {}
        if isinstance(features, str):
            if features not in self.services:
                raise LivectxError(f"unknown feature service {features!r}; known: {', '.join(sorted(self.services))}")
            for view in self.services[features]:
                wanted[view] = list(self.layouts[view].columns)
        else:
            for ref in features:
                view, sep, column = ref.partition(":")
                if not sep or view not in self.layouts or column not in self.layouts[view].columns:
                    raise LivectxError(f"unknown feature reference {ref!r} (expected <view>:<feature>)")
                wanted.setdefault(view, []).append(column)
        join_keys = {self.layouts[view].group.entity_key for view in wanted}
        if len(join_keys) != 1:
            raise LivectxError(f"features {features!r} span several entities ({', '.join(sorted(join_keys))})")
        plan = self._plans[key] = [(self.layouts[view], columns) for view, columns in wanted.items()]
        return plan

    def read(
        self, entity_ids: Sequence[str], features: str | Sequence[str], full_feature_names: bool = False
    ) -> dict[str, list[Any]]:
        """Feast's ``get_online_features(...).to_dict()`` shape: the join key, then one list per feature."""
        plan = self.plan(features)
        fields = [[*(layout.fields[c] for c in columns), layout.ts_field] for layout, columns in plan]
        commands = [
            ("HMGET", layout.redis_key(entity), *view_fields)
            for entity in entity_ids
            for (layout, _columns), view_fields in zip(plan, fields, strict=True)
        ]
        replies = self._execute(commands)
        result: dict[str, list[Any]] = {plan[0][0].group.entity_key: list(entity_ids)}
        # One output list per column, fetched once: the loop below only appends.
        outputs = [
            [result.setdefault(f"{layout.group.name}__{c}" if full_feature_names else c, []) for c in columns]
            for layout, columns in plan
        ]
        views = [(layout.decode, out) for (layout, _columns), out in zip(plan, outputs, strict=True)]
        i = 0
        for _entity in entity_ids:
            for decode, out in views:
                raw = replies[i]
                i += 1
                if raw[-1] is None:  # Feast reads nothing for an entity without the view's _ts
                    for column in out:
                        column.append(None)
                else:
                    for column, value in zip(out, raw, strict=False):
                        column.append(decode(value))
        return result


def _pipelined(client: Any, commands: list[tuple[Any, ...]]) -> list[Any]:
    """Send all commands in one write and read the replies: what a redis-py pipeline does on the wire,
    without building its per-command objects (a third of its cost for hundreds of small HMGETs)."""
    pool = client.connection_pool
    connection = pool.get_connection()
    try:
        connection.send_packed_command(connection.pack_commands(commands))
        return [connection.read_response() for _ in commands]
    except BaseException:
        connection.disconnect()  # unread replies must never reach the next caller of this connection
        raise
    finally:
        pool.release(connection)


def _with_pipeline(client: Any, commands: list[tuple[Any, ...]]) -> list[Any]:
    pipe = client.pipeline(transaction=False)
    for command in commands:
        pipe.execute_command(*command)
    return pipe.execute()


def feature_store_identity(feature_repo: Path) -> tuple[str, int]:
    """``project`` and ``entity_key_serialization_version`` from ``feature_store.yaml`` (no registry)."""
    import yaml

    config = yaml.safe_load((feature_repo / "feature_store.yaml").read_text())
    return str(config["project"]), int(config.get("entity_key_serialization_version", 3))
