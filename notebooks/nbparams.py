"""What the notebooks share: their parameters (environment variables) and a small fraud history.

``LIVECTX_NB_EVENTS`` (default 8000) events of the fraud scenario go to ``nb.<prefix>.transactions`` and
``nb.<prefix>.logins`` and are archived to the cold tier; models go to
the registry topic ``nb.<prefix>.models`` under the name ``nbfraud``. ``LIVECTX_NB_PREFIX`` (default: a
fixed ``demo``) keeps runs apart: CI sets a unique one per run. ``LIVECTX_TIER_URL`` picks the archive.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime

from livectx.settings import Settings

START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Params:
    events: int
    prefix: str

    @property
    def payments_topic(self) -> str:
        return f"nb.{self.prefix}.transactions"

    @property
    def logins_topic(self) -> str:
        return f"nb.{self.prefix}.logins"

    @property
    def topics(self) -> list[str]:
        return [self.logins_topic, self.payments_topic]

    @property
    def models_topic(self) -> str:
        return f"nb.{self.prefix}.models"

    model_name: str = "nbfraud"


def params() -> Params:
    return Params(int(os.environ.get("LIVECTX_NB_EVENTS", "8000")), os.environ.get("LIVECTX_NB_PREFIX", "demo"))


def ensure_history(settings: Settings, p: Params) -> int:
    """Produce and archive the history once (idempotent: an archived topic is left as it is); returns the
    number of archived records."""
    from livectx_ingest.archive.worker import ArchiveWorker

    from livectx.kafka import admin_client
    from livectx.produce import produce_scenario
    from livectx.tier.manifest import Manifest
    from livectx.tier.storage import open_storage
    from livectx.topics import TopicSpec, apply

    admin = admin_client(settings)
    compacted = {"cleanup.policy": "compact", "retention.ms": "86400000"}
    specs = [TopicSpec(t, 2, {"retention.ms": "86400000"}) for t in p.topics]
    apply(admin, [*specs, TopicSpec(p.models_topic, 1, compacted)])
    manifest = Manifest(open_storage(settings))
    archived = sum(e.records for t in p.topics for e in manifest.current(t))
    if archived:
        return archived
    produce_scenario(
        settings, "fraud", count=p.events, seed=8, start=START,
        topic_map={"livectx.transactions": p.payments_topic, "livectx.logins": p.logins_topic},
    )  # fmt: skip
    ArchiveWorker(settings, topics=p.topics, consumer_group=f"nb-{p.prefix}-archive", compact_interval_s=0).run(
        until_caught_up=True
    )
    return sum(e.records for t in p.topics for e in manifest.current(t))
