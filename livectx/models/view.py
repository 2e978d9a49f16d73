"""A live, in-memory view of the registry for processes that follow model versions (agents, shadows).

``start()`` reads the topic from its beginning to the end offsets present at start and returns only
then, so the first state a caller sees is the registry's current one, never a half-read history (bounded:
:class:`RegistryTimeout` after ``start_timeout_s``). A background thread then tails the topic, applies
records in offset order and tells followers when a name's active version changes: a new version
(activate) or a tombstone (retire, ``None``).

Followers run on the view's thread, one change at a time and in order; a follower that raises is logged
and does not stop the view (an agent keeps deciding with what it had).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from livectx import topics
from livectx.models.errors import ModelRegistryError, RegistryTimeout
from livectx.models.reader import TopicReader
from livectx.models.state import RegistryState
from livectx.models.version import ModelVersion
from livectx.settings import Settings

if TYPE_CHECKING:
    from confluent_kafka import Message

log = logging.getLogger(__name__)

Follower = Callable[[ModelVersion | None], None]


class RegistryView:
    """Follows the registry topic; thread-safe reads, change callbacks, and bounded waits."""

    def __init__(self, settings: Settings, topic: str = topics.MODELS, *, start_timeout_s: float = 30.0) -> None:
        self.settings = settings
        self.topic = topic
        self.start_timeout_s = start_timeout_s
        self._state = RegistryState()
        self._changed = threading.Condition()
        self._followers: dict[str, list[Follower]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reader: TopicReader | None = None
        self._failure: BaseException | None = None

    def start(self) -> RegistryView:
        """Read the topic to its current end, then keep tailing it on a daemon thread.

        Raises:
            ModelRegistryError: the topic does not exist or Kafka does not answer.
            RegistryTimeout: the end was not reached within ``start_timeout_s``.
        """
        reader = TopicReader(self.settings, self.topic)
        try:
            reader.read_to(reader.end_offsets(self.start_timeout_s), self._apply, self.start_timeout_s)
        except BaseException:
            reader.close()
            raise
        self._reader = reader
        self._thread = threading.Thread(target=self._tail, name=f"registry-view-{self.topic}", daemon=True)
        self._thread.start()
        return self

    def active(self, name: str) -> ModelVersion | None:
        with self._changed:
            return self._state.active.get(name)

    def version(self, name: str, version: str) -> ModelVersion | None:
        with self._changed:
            return self._state.versions.get((name, version))

    def follow(self, name: str, follower: Follower) -> None:
        """Call ``follower`` now with the active version of ``name`` (None if none), then on every change.

        Both happen under the view's lock, so no change slips between the first call and the next."""
        with self._changed:
            self._followers.setdefault(name, []).append(follower)
            self._notify(follower, name, self._state.active.get(name))

    def wait_for(self, name: str, version: str | None, timeout_s: float) -> ModelVersion | None:
        """Block until ``name``'s active version is ``version`` (``None``: retired). For tests and scripts.

        Raises:
            RegistryTimeout: not so within ``timeout_s`` (the message says what is active instead).
        """
        deadline = time.monotonic() + timeout_s

        def reached() -> bool:
            current = self._state.active.get(name)
            return (current.version if current else None) == version or self._failure is not None

        with self._changed:
            if not self._changed.wait_for(reached, timeout=max(0.0, deadline - time.monotonic())):
                current = self._state.active.get(name)
                raise RegistryTimeout(
                    f"{name} did not become {version or 'retired'} within {timeout_s:g}s "
                    f"(active: {current.ref if current else 'none'})"
                )
            if self._failure is not None:
                raise ModelRegistryError(f"the registry view stopped: {self._failure}")
            return self._state.active.get(name)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def __enter__(self) -> RegistryView:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _tail(self) -> None:
        assert self._reader is not None
        try:
            while not self._stop.is_set():
                self._reader.poll(self._apply, 0.2)
        except BaseException as exc:  # a fatal consumer error: waiters must not hang on a dead view
            log.exception("model registry view on %s stopped", self.topic)
            with self._changed:
                self._failure = exc
                self._changed.notify_all()

    def _apply(self, message: Message) -> None:
        with self._changed:
            try:
                change = self._state.apply(message.key(), message.value())
            except ModelRegistryError as exc:
                log.warning("skipping %s-%d@%d: %s", message.topic(), message.partition(), message.offset(), exc)
                return
            if change is None:
                return
            name, record = change
            log.info("model %s: %s", name, f"active version {record.version}" if record else "retired")
            for follower in self._followers.get(name, []):
                self._notify(follower, name, record)
            self._changed.notify_all()

    @staticmethod
    def _notify(follower: Follower, name: str, record: ModelVersion | None) -> None:
        try:
            follower(record)
        except Exception:
            log.exception("a follower of model %s failed on %s", name, record.ref if record else "its retirement")
