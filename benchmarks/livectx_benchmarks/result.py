"""What a benchmark returns, and how it is shown and saved."""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

from livectx.metrics import percentile  # noqa: F401  (re-exported for the benchmarks)


@dataclass
class BenchTable:
    """Rows a benchmark measured over time (e.g. the soak's minutes): printed above the figures, and kept
    in the JSON under ``tables`` beside the flat figures."""

    title: str
    columns: list[str]
    rows: list[list[str]]


@dataclass
class BenchResult:
    name: str
    figures: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    tables: list[BenchTable] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        """Flat object: figure names at top level (what later checks read), plus a little context (and the
        benchmark's tables, if it has any, as lists of rows by column name)."""
        out: dict[str, object] = {
            **{k: round(v, 4) for k, v in self.figures.items()},
            "benchmark": self.name,
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": f"{platform.node()} {platform.machine()} python {platform.python_version()}",
        }
        if self.tables:
            out["tables"] = {t.title: [dict(zip(t.columns, row, strict=True)) for row in t.rows] for t in self.tables}
        return out

    def write_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
