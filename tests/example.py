"""The example repo (``feature_repo/``) as the tests use it: through the public path, like any user's repo.

Loads the repo with :func:`livectx.repo.load_repo` and names its sources' models, views, services,
memory views, topics and generators under the names tests have always used.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from livectx.events import Event
from livectx.produce import generated_events
from livectx.repo.loader import Repo, load_repo

REPO_PATH = Path(__file__).resolve().parents[1] / "feature_repo"
REPO: Repo = load_repo(REPO_PATH)

Transaction = REPO.model("transaction")
Login = REPO.model("login")
Click = REPO.model("click")
SupportTicket = REPO.model("support_ticket")
Review = REPO.model("review")
Document = REPO.model("document")

TRANSACTIONS = REPO.source("transaction").topic
LOGINS = REPO.source("login").topic
CLICKS = REPO.source("click").topic
TICKETS = REPO.source("support_ticket").topic
REVIEWS = REPO.source("review").topic
DOCUMENTS = REPO.source("document").topic

FEATURE_GROUPS = REPO.groups
FEATURE_SERVICES: dict[str, tuple[str, ...]] = {name: s.views for name, s in REPO.services.items()}
FRAUD_MODEL_FEATURES = REPO.services["fraud_features"].model_columns
TEXT_SOURCES = REPO.text_sources
SCENARIO_NAMES = tuple(sorted(REPO.generators))


def group_named(name: str) -> Any:
    return REPO.group(name)


def get_scenario(name: str) -> Callable[..., Iterator[tuple[str, Event]]]:
    """The repo generator ``name`` as ``(seed, start, rate=None, **options) -> (topic, event)`` pairs."""

    REPO.generator(name)  # an unknown name fails here, naming the declared ones

    def generate(seed: int, start: datetime, rate: float | None = None, **options: Any) -> Iterator[tuple[str, Event]]:
        return generated_events(REPO, name, seed, start, rate, **options)

    return generate


def take(name: str, seed: int, start: datetime, count: int, rate: float | None = None, **options: Any) -> list[Any]:
    return list(itertools.islice(get_scenario(name)(seed, start, rate, **options), count))
