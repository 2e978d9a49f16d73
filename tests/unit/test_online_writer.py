"""The CAS rule that keeps online writes idempotent and monotonic, applied locally."""

from livectx_ingest.streaming.online_writer import Row, newest_per_entity
from livectx_ingest.streaming.sink import is_candidate

from livectx.features.catalog import group_named


def _row(start: int, offset: int, candidate: bool = True, entity: str = "u", n: int = 0) -> Row:
    return Row(entity, start, start + 10, start, offset, candidate, {"n": n})


def test_later_offset_same_window_wins_and_replays_are_ignored() -> None:
    rows = [_row(0, 5, n=1), _row(0, 6, n=2), _row(0, 4, n=99)]
    assert newest_per_entity(rows, {"u": None}) == [_row(0, 6, n=2)]
    assert newest_per_entity([_row(0, 6, n=2)], {"u": (0, 6)}) == []  # a replay writes nothing


def test_never_moves_back_to_an_older_window() -> None:
    assert newest_per_entity([_row(0, 9)], {"u": (10, 3)}) == []
    assert newest_per_entity([_row(20, 4, candidate=False)], {"u": (10, 3)}) == []
    assert newest_per_entity([_row(20, 4)], {"u": (10, 3)}) == [_row(20, 4)]


def test_candidate_windows_per_kind() -> None:
    hop = group_named("user_txn_1h")  # 60 min, 15 min hops
    assert is_candidate(hop, 0, 3_600_000, 3_000_000)
    assert not is_candidate(hop, 900_000, 4_500_000, 3_000_000)
    sliding = group_named("user_txn_10m")
    assert is_candidate(sliding, 0, 600_000, 600_000) and not is_candidate(sliding, 1, 600_001, 600_000)
    assert is_candidate(group_named("user_txn_5m"), 0, 300_000, 1)
