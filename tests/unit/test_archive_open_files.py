"""The archiver's per-record path (:meth:`OpenFiles.accept`) with a client error: the end of a partition
is noted, a retriable error skipped with a log line, a fatal one raised, and ``message.error()`` is read
once per message."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from confluent_kafka import KafkaError
from livectx_ingest.archive.open_files import OpenFiles

from livectx.errors import LivectxError

T = "payments"


class FakeMessage:
    def __init__(self, problem: KafkaError, offset: int = 7) -> None:
        self.problem = problem
        self.error_calls = 0
        self._offset = offset

    def error(self) -> KafkaError:
        self.error_calls += 1
        return self.problem

    def topic(self) -> str:
        return T

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset


def open_files() -> OpenFiles:
    none: Any = None
    return OpenFiles(none, none, none, none, writer="test", time_fields={}, on_progress=None)


def test_end_of_partition_is_noted_once_per_message() -> None:
    files = open_files()
    message = FakeMessage(KafkaError(KafkaError._PARTITION_EOF), offset=12)
    files.accept(message, None)  # type: ignore[arg-type]
    assert message.error_calls == 1
    assert files._eof == {(T, 0): 12}
    assert files.open == {}


def test_a_retriable_error_is_skipped_and_logged_a_fatal_one_raises(caplog: pytest.LogCaptureFixture) -> None:
    files = open_files()
    retriable = FakeMessage(KafkaError(KafkaError._TRANSPORT))
    with caplog.at_level(logging.WARNING):
        files.accept(retriable, None)  # type: ignore[arg-type]
    assert retriable.error_calls == 1
    assert "consumer error (retriable)" in caplog.text
    assert files.open == {} and files._eof == {}
    with pytest.raises(LivectxError, match="Kafka consumer failed"):
        files.accept(FakeMessage(KafkaError(KafkaError._FATAL, "fenced", fatal=True)), None)  # type: ignore[arg-type]
