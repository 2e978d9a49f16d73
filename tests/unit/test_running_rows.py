"""The batch path's offline rows (:mod:`livectx.features.running_rows`) equal the per-event path's, file
for file: the same rows, values to the last bit, window bounds and offsets, in the same order."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from livectx_ingest.streaming.offline import OfflineRows

from livectx.features.batch_apply import SEQ, TS, BatchApplier
from livectx.features.incremental import GroupState
from livectx.features.ranges import Ranges, Unrepresentable
from livectx.features.running_rows import running_rows
from livectx.features.spec import FeatureGroup
from tests.unit.test_batch_apply import GROUPS, _rows

TP = ("payments", 0)


def _strip_max_ip(group: FeatureGroup) -> FeatureGroup:
    """The view without its max over strings: the offline copy's columns are numbers."""
    features = tuple(f for f in group.features if not (f.column == "ip" and f.aggregation == "max"))
    return FeatureGroup(
        group.name, group.source_topic, group.event_type, group.entity, group.entity_key, group.window, features
    )


VIEWS = tuple(_strip_max_ip(g) for g in GROUPS)


def _files(folder: Path) -> dict[str, list[dict]]:  # type: ignore[type-arg]
    out = {}
    for path in sorted(folder.rglob("*.parquet")):
        rows = pq.read_table(path).to_pylist()
        for row in rows:
            row.pop("created_timestamp", None)
        out[str(path.relative_to(folder))] = rows
    return out


def _per_event(group: FeatureGroup, rows: list[dict], sizes: list[int], out: Path) -> None:  # type: ignore[type-arg]
    state = GroupState(group)
    offline = OfflineRows(out / "offline", out / "windows", [group])
    at = 0
    for size in sizes:
        for row in rows[at : at + size]:
            entity, ts, seq = row[group.entity_key], row[TS], row[SEQ]
            accepted = state.apply(entity, ts, seq, tuple(row[c] for c in state.columns))
            offline.record(state, TP, seq, entity, ts, accepted=accepted)
        offline.flush(written_ms=at)
        at += size


def _batched(group: FeatureGroup, rows: list[dict], sizes: list[int], out: Path) -> None:  # type: ignore[type-arg]
    state = GroupState(group)
    applier = BatchApplier.for_group(group, state.columns)
    assert applier is not None
    offline = OfflineRows(out / "offline", out / "windows", [group])
    at = 0
    for size in sizes:
        applier.apply(state, pa.Table.from_pylist(rows[at : at + size]), None, offline.for_partition(TP))
        offline.flush(written_ms=at)
        at += size


@pytest.mark.parametrize("group", VIEWS, ids=lambda g: g.name)
@pytest.mark.parametrize(("seed", "disorder"), [(1, 0.0), (2, 0.05), (3, 0.3)])
def test_batch_rows_equal_the_per_event_rows(group: FeatureGroup, seed: int, disorder: float, tmp_path: Path) -> None:
    rows = _rows(group, seed, 1_200, disorder)
    rng = random.Random(seed)
    sizes = [rng.randrange(1, 80) for _ in range(12)]
    sizes.append(len(rows) - sum(sizes))
    _per_event(group, rows, sizes, tmp_path / "want")
    _batched(group, rows, sizes, tmp_path / "got")
    want, got = _files(tmp_path / "want"), _files(tmp_path / "got")
    assert want.keys() == got.keys()
    for name in want:
        assert repr(got[name]) == repr(want[name]), name  # repr: tells -0.0 from 0.0 and 1 from 1.0


def test_it_computes_in_order_batches_without_the_per_event_path(tmp_path: Path) -> None:
    """The batch rows come from the range queries, not from the per-event fallback."""
    group = VIEWS[1]  # hopping: windows over several buckets
    rows = _rows(group, 4, 600, 0.0)
    state = GroupState(group)
    for row in rows[:300]:
        state.apply(row[group.entity_key], row[TS], row[SEQ], tuple(row[c] for c in state.columns))
    got = running_rows(state, pa.Table.from_pylist(rows[300:]))
    assert got.offsets.tolist() == [r[SEQ] for r in rows[300:]]
    for i, row in enumerate(rows[300:]):
        state.apply(row[group.entity_key], row[TS], row[SEQ], tuple(row[c] for c in state.columns))
        want = state.row(row[group.entity_key])
        assert (got.window_start_ms[i], got.window_end_ms[i]) == (want.window_start_ms, want.window_end_ms)
        assert repr({k: pa.array(v)[i].as_py() for k, v in got.values.items()}) == repr(want.values)


def test_exact_sums_match_fsum_to_the_last_bit() -> None:
    rng = random.Random(7)
    for _ in range(200):
        n = rng.randrange(1, 40)
        values = np.array([rng.choice([1e16, -1e16, 0.1, 0.2, 1e-300, 3.0, 1e300]) * rng.random() for _ in range(n)])
        q = Ranges(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(n, np.int64), np.arange(n), np.zeros(n))
        try:
            got = q.exact_sum([], pa.array(values))
        except Unrepresentable:
            continue  # a subnormal or overflowing prefix: the per-event path takes it
        assert got.tolist() == [math.fsum(values[: i + 1]) for i in range(n)]


def test_values_it_cannot_compute_exactly_are_refused() -> None:
    q = Ranges(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(2, np.int64), np.arange(2), np.zeros(2))
    with pytest.raises(Unrepresentable):
        q.exact_sum([], pa.array([1.0, math.inf]))
    with pytest.raises(Unrepresentable):
        q.extreme([], pa.array([1.0, math.nan]), np.maximum)


def test_a_batch_it_cannot_compute_goes_event_by_event_with_the_same_rows(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    group = VIEWS[0]  # tumbling, every kind: the NaN reaches a sum, a mean, a min and a max
    rows = _rows(group, 6, 300, 0.0)
    rows[150]["amount"] = math.nan
    sizes = [100, 100, 100]
    _per_event(group, rows, sizes, tmp_path / "want")
    with caplog.at_level("DEBUG", logger="livectx.features.batch_apply"):
        _batched(group, rows, sizes, tmp_path / "got")
    assert "taken event by event" in caplog.text
    want, got = _files(tmp_path / "want"), _files(tmp_path / "got")
    assert want.keys() == got.keys()
    for name in want:
        assert repr(got[name]) == repr(want[name]), name


def test_rows_written_before_the_checkpoint_are_the_same_rows(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Past ``EAGER_ROWS`` a view's rows are written at once, in more files: the same rows, in order; and a
    fenced commit's reload deletes such files (they start past the committed offset)."""
    from livectx_ingest.streaming import offline as offline_module

    group = VIEWS[1]
    rows = _rows(group, 8, 900, 0.05)
    _per_event(group, rows, [900], tmp_path / "want")  # one checkpoint at the end
    monkeypatch.setattr(offline_module, "EAGER_ROWS", 40)
    state = GroupState(group)
    offline = OfflineRows(tmp_path / "got" / "offline", tmp_path / "got" / "windows", [group])
    applier = BatchApplier.for_group(group, state.columns)
    assert applier is not None
    for at in (0, 300, 600):
        applier.apply(state, pa.Table.from_pylist(rows[at : at + 300]), None, offline.for_partition(TP))
    offline.flush(written_ms=0)

    def ordered(folder: Path) -> list[dict]:  # type: ignore[type-arg]
        every = [row for file in _files(folder).values() for row in file]
        return [{k: v for k, v in r.items() if k not in ("written_ms", f"{group.name}__written_ms")} for r in every]

    assert len(_files(tmp_path / "got")) > len(_files(tmp_path / "want"))
    assert repr(ordered(tmp_path / "got")) == repr(ordered(tmp_path / "want"))

    state = GroupState(group)
    offline = OfflineRows(tmp_path / "fenced" / "offline", tmp_path / "fenced" / "windows", [group])
    applier = BatchApplier.for_group(group, state.columns)
    assert applier is not None
    applier.apply(state, pa.Table.from_pylist(rows[:300]), None, offline.for_partition(TP))
    offline.drop_buffered()  # a fenced commit: nothing of this batch is committed
    assert offline.discard_uncommitted(TP, rows[0][SEQ]) > 0
    assert not list((tmp_path / "fenced").rglob("*.parquet"))


def test_a_failed_file_is_raised_only_once_every_file_has_finished(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No write may land after the caller moved on (a reload deletes uncommitted files only once)."""
    import threading

    from livectx_ingest.streaming import offline as offline_module

    finished: list[str] = []
    first = threading.Event()

    def write(job: tuple) -> None:  # type: ignore[type-arg]
        if not first.is_set():
            first.set()
            raise OSError("disk full")
        threading.Event().wait(0.2)  # a slower file, still being written when the first one failed
        finished.append(job[1].name)

    monkeypatch.setattr(offline_module, "_write", write)
    group = VIEWS[0]
    rows = _rows(group, 9, 200, 0.0)
    offline = OfflineRows(tmp_path / "offline", tmp_path / "windows", [group])
    state = GroupState(group)
    applier = BatchApplier.for_group(group, state.columns)
    assert applier is not None
    for tp in (("payments", 0), ("payments", 1)):
        applier.apply(state, pa.Table.from_pylist(rows), None, offline.for_partition(tp))
    with pytest.raises(OSError, match="disk full"):
        offline.flush(written_ms=0)
    assert len(finished) == 1
