"""No product module knows the example domain: the fraud/support repo goes through the path any repo does.

The names are taken from the example repo itself (topics, sources, views, features, services, memory
views, generators, entity keys), so the test follows the example as it changes. Product modules are the
core (``livectx``), the workers (``livectx_ingest``), the agents' client and server (``livectx_agents``) and
the backtests (``livectx_backtest``: they score the decision the repo declares), but their ``example_*``
modules, which belong to the example and which no product module imports. Not covered:
``livectx_benchmarks`` (figures measured on the example, through ``benchmarks/example.py``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.example import REPO

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = [
    ROOT / "livectx",
    ROOT / "ingest" / "livectx_ingest",
    ROOT / "agents" / "livectx_agents",
    ROOT / "backtest" / "livectx_backtest",
]


def _example_names() -> set[str]:
    names = {s.topic for s in REPO.sources.values()}
    names |= {f'"{s}"' for s in REPO.sources} | {f"'{s}'" for s in REPO.sources}
    names |= {g.name for g in REPO.groups} | {f.name for g in REPO.groups for f in g.features}
    names |= set(REPO.services) | set(REPO.memory) | {f'"{g}"' for g in REPO.generators}
    names |= {key for key in REPO.entities.values()}
    names |= {s.model.__name__ for s in REPO.sources.values()} | {"Transaction", "SupportTicket", "Login", "Review"}
    return names


def _product_files() -> list[Path]:
    return [p for root in PRODUCT for p in root.rglob("*.py") if not p.name.startswith("example_")]


def test_no_product_module_names_the_example_domain() -> None:
    names = _example_names()
    pattern = re.compile(
        "|".join(
            sorted((re.escape(n) if n[0] in "\"'" else rf"\b{re.escape(n)}\b" for n in names), key=len, reverse=True)
        )
    )
    found = [
        f"{path.relative_to(ROOT)}:{n}: {match.group(0)}"
        for path in _product_files()
        for n, line in enumerate(path.read_text().splitlines(), start=1)
        if (match := pattern.search(line))
    ]
    assert found == [], "\n".join(found)


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    modules = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    return modules + [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]


def test_no_product_module_imports_the_example() -> None:
    example_modules = {p.stem for p in (ROOT / "feature_repo").rglob("*.py")} | {"feature_repo"}
    found = []
    for path in _product_files():
        for module in _imports(path):
            top = module.split(".")[0]
            if top in example_modules or ".example_" in module or module.startswith("tests"):
                found.append(f"{path.relative_to(ROOT)}: imports {module}")
    assert found == [], "\n".join(found)
