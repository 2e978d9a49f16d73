"""The checkpoint's go/no-go rule: commit only over our own epoch and our own last offsets."""

from __future__ import annotations

import pytest
from livectx_ingest.streaming.checkpoint import FencedError, RolledBack, raise_for, verify


def test_our_epoch_and_our_last_commit_may_commit() -> None:
    assert verify(3, b"3", 100, 150, b"100") == "ok"
    assert verify(3, b"3", None, 10, None) == "ok"  # never committed, nothing stored


def test_a_retried_commit_whose_reply_was_lost_may_commit_again() -> None:
    assert verify(3, b"3", 100, 150, b"150") == "ok"


def test_a_newer_epoch_means_another_worker_took_over() -> None:
    assert verify(3, b"4", 100, 150, b"100") == "fenced"
    assert verify(3, b"4", 100, 150, b"150") == "fenced"


def test_a_store_that_forgot_our_claim_or_our_commits_rolled_back() -> None:
    assert verify(3, None, 100, 150, None) == "rolled back"  # restarted empty
    assert verify(3, b"2", 100, 150, b"80") == "rolled back"  # restored from before our claim
    assert verify(3, b"3", 100, 150, b"80") == "rolled back"  # from before our last commit
    assert verify(3, b"3", 100, 150, None) == "rolled back"


def test_offsets_ahead_of_ours_under_our_epoch_are_not_ours_to_overwrite() -> None:
    assert verify(3, b"3", 100, 150, b"170") == "fenced"


def test_verdicts_raise_fenced_first_then_rolled_back_naming_the_partitions() -> None:
    raise_for({("t", 0): "ok"})
    with pytest.raises(FencedError):
        raise_for({("t", 0): "rolled back", ("t", 1): "fenced"})
    with pytest.raises(RolledBack) as caught:
        raise_for({("t", 0): "ok", ("t", 1): "rolled back"})
    assert caught.value.partitions == [("t", 1)]
