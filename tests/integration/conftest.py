"""Integration fixtures: the real Kafka broker and Redis, brought up through livectx's own stack code.

If the configured stack already answers (a developer's running stack), it is used as is and left running;
otherwise the session starts it and stops it at the end. Every test uses names unique to it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from livectx.settings import Settings, get_settings
from livectx.stack.manager import Stack


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return get_settings(reload=True)


@pytest.fixture(scope="session")
def stack(settings: Settings) -> Iterator[Stack]:
    from livectx import topics
    from livectx.kafka import admin_client
    from livectx.repo import current_repo

    the_stack = Stack(settings)
    started: list[str] = []
    if not the_stack.is_up():  # stop at the end only what this session started, never a running service
        running = {s.name for s in the_stack.status() if s.pid is not None}
        try:
            started = [name for name, action in the_stack.up() if action == "started"]
        except BaseException:  # one service did not come up: stop the others this session started
            the_stack.down([s.name for s in the_stack.services if s.name not in running])
            raise
    topics.apply(admin_client(settings), topics.declared_topics(current_repo(settings)))
    yield the_stack
    # Clients that ended up in reference cycles (a worker and its callbacks) are freed only by the cycle
    # collector: run it first, or their background threads retry the stopped broker until exit.
    gc.collect()
    if started:
        the_stack.down(started)


@pytest.fixture(scope="session")
def schema_registry(settings: Settings) -> Iterator[str]:
    """The stack's schema registry alone (the schema commands need neither Kafka nor Redis): its URL.

    Started through the stack's code if it does not answer, and stopped again at the end if it was."""
    the_stack = Stack(settings)
    registry = the_stack.service("schema-registry")
    started = False
    if settings.schema_registry.url is None and not registry.is_healthy():
        started = the_stack.up(["schema-registry"]) == [("schema-registry", "started")]
    yield settings.schema_registry_url
    if started:
        the_stack.down(["schema-registry"])


@pytest.fixture(scope="session")
def feature_store(settings: Settings, stack: Stack):  # type: ignore[no-untyped-def]
    from livectx.feast_store import apply_feature_repo, open_feature_store

    apply_feature_repo(settings)
    return open_feature_store(settings)


@pytest.fixture(scope="session")
def embedder():  # type: ignore[no-untyped-def]
    """The real all-MiniLM-L6-v2 model on the default backend (ONNX Runtime on a CPU), loaded once per session."""
    from livectx.vectors.embedder import Embedder

    return Embedder().load()
