"""``livectx tier status``: per topic and partition, the hot range, the cold range, and any gap."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from livectx.settings import Settings
from livectx.tier.coverage import Range, missing
from livectx.tier.hot import watermarks
from livectx.tier.manifest import Manifest
from livectx.tier.storage import open_storage


@dataclass(frozen=True)
class PartitionStatus:
    """``hot_*`` is ``None`` when the broker has no such topic; ``cold_*`` when nothing is archived."""

    topic: str
    partition: int
    hot_low: int | None
    hot_high: int | None
    cold_first: int | None
    cold_last: int | None
    cold_records: int
    cold_files: int
    gaps: list[Range] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "gaps": [{"from": a, "to": b - 1} for a, b in self.gaps]}


def tier_status(settings: Settings, topics: Sequence[str] | None = None) -> list[PartitionStatus]:
    """Status of ``topics`` (default: every archived topic), sorted by topic and partition."""
    manifest = Manifest(open_storage(settings))
    names = list(topics) if topics else manifest.topics()
    marks = watermarks(settings, names)
    rows: list[PartitionStatus] = []
    for topic in names:
        entries = manifest.current(topic)
        partitions = {p for (t, p) in marks if t == topic} | {e.partition for e in entries}
        for partition in sorted(partitions):
            mine = [e for e in entries if e.partition == partition]
            low, high = marks.get((topic, partition), (None, None))
            cold = [(e.start_offset, e.end_offset) for e in mine]
            covered = cold + ([(low, high)] if low is not None and high is not None else [])
            top = max([high or 0, *(end for _s, end in cold)])
            rows.append(
                PartitionStatus(
                    topic=topic,
                    partition=partition,
                    hot_low=low,
                    hot_high=high,
                    cold_first=min((e.first_offset for e in mine), default=None),
                    cold_last=max((e.last_offset for e in mine), default=None),
                    cold_records=sum(e.records for e in mine),
                    cold_files=len(mine),
                    gaps=missing((0, top), covered),
                )
            )
    return rows
