"""The CAS rule that keeps online writes idempotent and monotonic, applied locally."""

from livectx_ingest.streaming.online_writer import Row, newest_per_entity


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
