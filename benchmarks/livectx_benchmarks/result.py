"""What a benchmark returns, and how it is shown and saved."""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

from livectx.metrics import percentile  # noqa: F401  (re-exported for the benchmarks)


@dataclass
class BenchResult:
    name: str
    figures: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        """Flat object: figure names at top level (what later checks read), plus a little context."""
        return {
            **{k: round(v, 4) for k, v in self.figures.items()},
            "benchmark": self.name,
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": f"{platform.node()} {platform.machine()} python {platform.python_version()}",
        }

    def write_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
