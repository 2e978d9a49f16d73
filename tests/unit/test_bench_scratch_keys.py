"""A bench's scratch keys go in bounded UNLINKs, and only keys named by a real run tag are matched."""

from __future__ import annotations

import pytest
from livectx_benchmarks.scratch_keys import CHUNK, forget_tagged, unlink_keys


class RecordingRedis:
    """The two calls the helpers make, on an in-memory keyspace (unit level: the bench's integration test
    runs them against the real Redis)."""

    def __init__(self, keys: list[bytes]) -> None:
        self.keys = set(keys)
        self.unlinks: list[int] = []
        self.patterns: list[str] = []

    def scan_iter(self, match: str, count: int) -> list[bytes]:
        self.patterns.append(match)
        needle = match.strip("*").encode()
        return sorted(k for k in self.keys if needle in k)

    def unlink(self, *keys: bytes) -> int:
        self.unlinks.append(len(keys))
        found = self.keys & set(keys)
        self.keys -= found
        return len(found)


def test_unlink_keys_goes_in_chunks_and_counts_what_existed() -> None:
    keys = [b"k%d" % i for i in range(2 * CHUNK + 7)]
    client = RecordingRedis(keys[: CHUNK + 1])
    assert unlink_keys(client, iter(keys)) == CHUNK + 1
    assert client.unlinks == [CHUNK, CHUNK, 7]
    assert client.keys == set()


def test_forget_tagged_removes_only_the_runs_keys() -> None:
    ours = [b"livectx:engine:bench-1a2b3c4d:state:t:0", b"\x01user_id\x0d1a2b3c4d-u12livectx"]
    theirs = [b"livectx:engine:prod:state:t:0", b"\x01user_id\x05u-001livectx"]
    client = RecordingRedis(ours + theirs)
    assert forget_tagged(client, "1a2b3c4d") == 2
    assert client.keys == set(theirs)
    assert client.patterns == ["*1a2b3c4d*"]


@pytest.mark.parametrize("tag", ["", "bench", "1a2b*c4d", "1a2b?c4d", "[abc]defgh"])
def test_forget_tagged_refuses_a_pattern_that_could_match_other_keys(tag: str) -> None:
    client = RecordingRedis([b"livectx:engine:prod:state:t:0"])
    with pytest.raises(ValueError, match="refusing"):
        forget_tagged(client, tag)
    assert client.unlinks == [] and client.patterns == []
