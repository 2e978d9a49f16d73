"""``livectx bench attack``: the article's card-testing story, run, with a table and a timeline plot.

The scenario (:mod:`livectx_benchmarks.attack`) runs at 1,000 payments/s of wall clock (``--scale``
shortens the run and drops the bursts past its end), seed 22, the model trained on seed 23. Figures:

- ``attack_decline_rate_fresh`` / ``_stale``: attack payments declined by each agent;
  ``..._after_3``: the same, leaving out each burst's first three payments (the issue's target);
- ``detect_ms_p50``: event time from a burst's first payment to the fresh agent's first decline;
- ``decision_p50_ms`` / ``decision_p99_ms``: the fresh agent's ``decide`` (context, model, decision);
- ``false_positive_rate``: normal payments the fresh agent declined;
- ``payments_per_s``: the rate the run kept (1,000 unless the machine could not).

The table goes to stdout with the machine's load, and the plot to ``bench-results/attack.png``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from livectx.settings import Settings
from livectx_benchmarks.attack import AttackSpec, Outcome, bursts, figures, run_scenario, train_model
from livectx_benchmarks.result import BenchResult

PLOT = Path("bench-results") / "attack.png"


def run(
    settings: Settings, scale: float = 1.0, plot: Path = PLOT, live: float = 1.0, rate: float = 1000.0
) -> BenchResult:
    """The bench: train, run paced, report. ``live`` 1 (the default) runs the live path on the stack (the
    feature worker, Redis, the agent with the registered model: :mod:`livectx_benchmarks.attack_live`); 0
    runs the same scenario in this process over the engine's state, with no stack."""
    base = AttackSpec()
    seconds = max(15.0, base.seconds * min(scale, 1.0))
    spec = AttackSpec(seconds=seconds, attacks=tuple(a for a in base.attacks if a + 8 < seconds), payments_per_s=rate)
    model = train_model(spec)
    load_before = os.getloadavg()[0]
    if live:
        from livectx_benchmarks.attack_live import run_live

        out = run_live(settings, spec, model)
    else:
        out = run_scenario(spec, model)
    load_after = os.getloadavg()[0]
    result = BenchResult("attack", figures(out))
    result.figures["load_1m"] = max(load_before, load_after)
    result.notes.extend(report_lines(out, result.figures))
    result.notes.append(f"machine load (1-min average) {load_before:.1f} before, {load_after:.1f} after")
    written = write_plot(out, plot)
    result.notes.append(f"timeline written to {written}" if written else "matplotlib missing: no timeline plot")
    return result


def report_lines(out: Outcome, f: dict[str, float]) -> list[str]:
    """The short table a person reads: fresh beside stale."""
    spec = out.spec
    time_note = f" (event time compressed {spec.speedup:g}x)" if spec.speedup != 1 else ""
    age = spec.refreshed_before_s
    fresh = "fresh (live: worker, Redis, get_context)" if f.get("live") else "fresh (in-process engine state)"
    rows = [
        ("", fresh, f"stale (15-min batch, {age:g}-{age + spec.seconds:g} s old)"),
        (
            "attack payments declined",
            f"{f['attack_decline_rate_fresh']:.0%} of {f['attack_payments']:.0f}",
            f"{f['attack_decline_rate_stale']:.0%}",
        ),
        (
            "  after each burst's first 3",
            f"{f['attack_decline_rate_fresh_after_3']:.0%}",
            f"{f['attack_decline_rate_stale_after_3']:.0%}",
        ),
        (
            f"bursts caught, first payment -> first decline{time_note}",
            f"{f['bursts_detected_fresh']:.0f}/{f['bursts']:.0f}, p50 {f['detect_ms_p50']:,.0f} ms",
            f"{f['bursts_detected_stale']:.0f}/{f['bursts']:.0f}",
        ),
        (
            "decision latency p50 / p99 (feature fetch incl.)",
            f"{f['decision_p50_ms']:.2f} / {f['decision_p99_ms']:.2f} ms",
            "shadow",
        ),
        *(
            [
                (
                    "payment to decision p50 / p99 (through Kafka)",
                    f"{f['event_to_decision_p50_ms']:.1f} / {f['event_to_decision_p99_ms']:.1f} ms",
                    "",
                )
            ]
            if f.get("live")
            else []
        ),
        (
            "false positives on normal payments",
            f"{f['false_positive_rate']:.2%}",
            f"{f['false_positive_rate_stale']:.2%}",
        ),
    ]
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [
        f"card-testing scenario: {f['payments']:,.0f} payments over {spec.seconds:g} s at "
        f"{f['payments_per_s']:,.0f}/s{time_note}, {f['bursts']:.0f} bursts, seed {spec.seed}"
    ]
    lines += ["  ".join(cell.ljust(width[i]) for i, cell in enumerate(r)) for r in rows]
    return lines


def write_plot(out: Outcome, path: Path) -> Path | None:
    """A timeline: payments per second, attack bursts shaded, each agent's declines marked."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    t = [(ms - out.run_start_ms) / 1000 for ms in out.event_ms]
    fig, ax = plt.subplots(figsize=(11, 4.2))
    seconds = int(out.spec.seconds) + 1
    per_s = [0] * seconds
    for x in t:
        per_s[min(int(x), seconds - 1)] += 1
    ax.bar(range(seconds), per_s, width=1.0, align="edge", color="#d9d9d9", label="payments per second")
    top = max(per_s) if per_s else 1
    for members in bursts(out).values():
        ax.axvspan(t[members[0]], t[members[-1]], color="#f4a261", alpha=0.35, lw=0)
    attacks = [i for i, b in enumerate(out.burst) if b is not None]
    ax.scatter([t[i] for i in attacks], [top * 1.08] * len(attacks), marker="|", color="#e76f51", label="attack")
    marks: list[tuple[str, list[bool], float, str]] = [
        ("declined, fresh features", out.fresh, 1.16, "#2a9d8f"),
        ("declined, 15-min-stale features", out.stale, 1.24, "#264653"),
    ]
    for label, declined, level, colour in marks:
        hits = [t[i] for i, d in enumerate(declined) if d]
        ax.scatter(hits, [top * level] * len(hits), marker="v", s=18, color=colour, label=f"{label} ({len(hits)})")
    speed = f", event time compressed {out.spec.speedup:g}x" if out.spec.speedup != 1 else ""
    ax.set(xlabel=f"seconds into the run (event time{speed})", ylabel="payments", ylim=(0, top * 1.32))
    ax.set_title("Card-testing bursts: the fraud agent with fresh features beside a 15-minute batch snapshot")
    ax.legend(loc="lower right", fontsize=8, framealpha=0.9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


__all__: list[Any] = ["report_lines", "run", "write_plot"]
