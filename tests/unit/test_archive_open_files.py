"""The archiver's per-record path (:meth:`OpenFiles.accept`) with a client error: the end of a partition
is noted, a retriable error skipped with a log line, a fatal one raised, and ``message.error()`` is read
once per message."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pytest
from livectx_ingest.archive.open_files import OpenFiles

from livectx.errors import LivectxError

T = "payments"


@dataclass
class FakeError:
    error_code: int
    is_fatal: bool = False

    def code(self) -> int:
        return self.error_code

    def fatal(self) -> bool:
        return self.is_fatal


class FakeMessage:
    def __init__(self, problem: FakeError, offset: int = 7) -> None:
        self.problem = problem
        self.error_calls = 0
        self._offset = offset

    def error(self) -> FakeError:
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
    message = FakeMessage(FakeError(-191), offset=12)
    files.accept(message, None)  # type: ignore[arg-type]
    assert message.error_calls == 1
    assert files._eof == {(T, 0): 12}
    assert files.open == {}


def test_a_retriable_error_is_skipped_and_logged_a_fatal_one_raises(caplog: pytest.LogCaptureFixture) -> None:
    files = open_files()
    retriable = FakeMessage(FakeError(-195))
    with caplog.at_level(logging.WARNING):
        files.accept(retriable, None)  # type: ignore[arg-type]
    assert retriable.error_calls == 1
    assert "consumer error (retriable)" in caplog.text
    assert files.open == {} and files._eof == {}
    with pytest.raises(LivectxError, match="Kafka consumer failed"):
        files.accept(FakeMessage(FakeError(-150, is_fatal=True)), None)  # type: ignore[arg-type]
