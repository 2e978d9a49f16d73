"""A backtest's outputs: ``summary.json``, ``report.md`` with PNG plots, and the terminal table.

The plots: precision-recall curves (one per version, its threshold's point marked), score distributions
(positives vs negatives, per version) and decisions over time (flagged events per version against actual
positives). Without a label (the decision declares none) the curves cannot be drawn: that plot says so,
the distributions are of all scored events, and the report shows agreement instead of precision and cost.
Matplotlib runs on the Agg backend: no display needed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from livectx_backtest.run import BacktestResult, iso_ms

PLOTS = {
    "pr": "precision_recall.png",
    "scores": "score_distributions.png",
    "timeline": "decisions_over_time.png",
}
JUDGED = ["model", "threshold", "precision", "recall", "F1", "ROC-AUC", "flagged", "FP", "FN", "cost"]
UNJUDGED = ["model", "threshold", "flagged", "mean score", "p50", "p90", "p99"]


def write_report(result: BacktestResult, out: Path) -> dict[str, Path]:
    """Write the JSON summary, the plots and the Markdown report under ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "summary.json", "markdown": out / "report.md"}
    paths["json"].write_text(json.dumps(result.to_json(), indent=2) + "\n")
    paths.update({name: out / file for name, file in PLOTS.items()})
    _plot_pr(result, paths["pr"])
    _plot_scores(result, paths["scores"])
    _plot_timeline(result, paths["timeline"])
    paths["markdown"].write_text(markdown(result))
    return paths


def model_rows(summary: dict[str, Any]) -> tuple[list[str], list[tuple[str, ...]]]:
    """The per-version table: judged figures with a label, score quantiles without."""
    if summary["positives"] is None:
        return UNJUDGED, [
            (m["ref"], f"{m['threshold']:g}", f"{m['flagged']:,}", f"{m['score_mean']:.4f}", f"{m['score_p50']:.4f}",
             f"{m['score_p90']:.4f}", f"{m['score_p99']:.4f}")
            for m in summary["models"]
        ]  # fmt: skip
    return JUDGED, [
        (m["ref"], f"{m['threshold']:g}", f"{m['precision']:.4f}", f"{m['recall']:.4f}", f"{m['f1']:.4f}",
         _maybe(m["roc_auc"]), f"{m['flagged']:,}", f"{m['fp']:,}", f"{m['fn']:,}", f"{m['cost']:,.0f}")
        for m in summary["models"]
    ]  # fmt: skip


def example_rows(summary: dict[str, Any], d: dict[str, Any]) -> tuple[list[str], list[tuple[str, ...]]]:
    """The first decisions two versions disagree on."""
    decision = summary["decision"]
    labelled = summary["positives"] is not None
    header = [decision["id"], decision["entity"], "time", *([decision["label"]] if labelled else [])]
    header += [f"score {d['a']}", f"score {d['b']}"]
    rows = [
        (e["id"], e["entity"], e["event_time"], *([str(e["label"])] if labelled else []),
         f"{e['score_' + d['a']]:.4f}", f"{e['score_' + d['b']]:.4f}")
        for e in d["examples"]
    ]  # fmt: skip
    return header, rows


def markdown(result: BacktestResult) -> str:
    s = result.summary
    decision = s["decision"]
    labelled = s["positives"] is not None
    judged = (
        f"{s['positives']:,} of them positive ({decision['label']})."
        if labelled
        else "The decision declares no label: scores and agreement only, no precision, recall or cost."
    )
    lines = [
        f"# Backtest: {' vs '.join(m['ref'] for m in s['models'])}",
        "",
        f"Decision `{decision['service']}` on source `{decision['source']}`. "
        f"Range `{s['range']['from'] or 'start'}` to `{s['range']['to'] or 'end'}` "
        f"on {', '.join(s['range']['topics'])}: "
        f"{s['events']['records']:,} records ({s['events']['from_archive']:,} from the archive, "
        f"{s['events']['from_broker']:,} from the broker), {s['scored']:,} scored events, {judged} "
        "Features recomputed as of each scored event with the streaming engine's window state; every version "
        "scored the identical inputs.",
        "",
    ]
    if labelled:
        lines += [f"Decision cost = {s['costs']['false_positive']:g} x FP + {s['costs']['false_negative']:g} x FN.", ""]
    lines += _table(*model_rows(s))
    if s["events"]["bad"]:
        lines += ["", "Bad records (skipped): " + ", ".join(f"{k}: {v}" for k, v in s["events"]["bad"].items())]
    for d in s["differences"]:
        lines += ["", f"## {d['a']} vs {d['b']}: {d['count']:,} decisions differ (agreement {d['agreement']:.4f})"]
        if d["examples"]:
            lines += ["", *_table(*example_rows(s, d))]
    lines += [
        "",
        "## Plots",
        "",
        f"![precision-recall]({PLOTS['pr']})",
        "",
        f"![score distributions]({PLOTS['scores']})",
        "",
        f"![decisions over time]({PLOTS['timeline']})",
        "",
        f"Timing: {result.timing['seconds']:.1f} s, {result.timing['events_per_s']:,.0f} events/s.",
        "",
    ]
    return "\n".join(lines)


def print_summary(result: BacktestResult) -> None:
    """The per-version table and the differences, on the terminal."""
    from livectx.cli.common import print_table

    s = result.summary
    judged = f" ({s['positives']:,} positive)" if s["positives"] is not None else " (no label: not judged)"
    print_table(
        f"backtest {s['decision']['service']}: {s['scored']:,} scored events{judged} from "
        f"{s['events']['records']:,} records, {s['range']['first_event']} .. {s['range']['last_event']}",
        *model_rows(s),
    )
    for d in s["differences"]:
        print_table(
            f"{d['a']} vs {d['b']}: {d['count']:,} decisions differ (agreement {d['agreement']:.4f})"
            + (f" (first {len(d['examples'])})" if d["examples"] else ""),
            *example_rows(s, d),
        )


def _table(header: list[str], rows: list[tuple[str, ...]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join("---" for _ in header) + " |",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def _maybe(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plot_pr(result: BacktestResult, path: Path) -> None:
    from sklearn.metrics import precision_recall_curve

    plt = _pyplot()
    labels = result.scored.get("label")
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=100)
    if labels is None:
        ax.text(0.5, 0.5, "no label declared: nothing to judge", ha="center", va="center")
    for model in result.summary["models"]:
        if labels is not None and 0 < labels.sum() < len(labels):
            precision, recall, _ = precision_recall_curve(labels, result.scores[model["ref"]])
            (line,) = ax.plot(recall, precision, label=f"{model['ref']} (F1 {model['f1']:.3f})")
            ax.scatter([model["recall"]], [model["precision"]], color=line.get_color(), zorder=3)
    ax.set(xlabel="recall", ylabel="precision", title="precision-recall (dot: the version's threshold)")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    if labels is not None:
        ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def _plot_scores(result: BacktestResult, path: Path) -> None:
    import numpy as np

    plt = _pyplot()
    labels = result.scored.get("label")
    models = result.summary["models"]
    fig, axes = plt.subplots(1, len(models), figsize=(4.5 * len(models), 3.5), dpi=100, squeeze=False)
    bins = np.linspace(0, 1, 41)
    for ax, model in zip(axes[0], models, strict=True):
        scores = result.scores[model["ref"]]
        if labels is None:
            ax.hist(scores, bins=bins, alpha=0.6, label="scored events", log=True)
        else:
            ax.hist(scores[~labels], bins=bins, alpha=0.6, label="negatives", log=True)
            ax.hist(scores[labels], bins=bins, alpha=0.6, label="positives", log=True)
        ax.axvline(model["threshold"], color="black", linestyle="--", linewidth=1)
        ax.set(title=model["ref"], xlabel="score", ylabel="scored events (log)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def _plot_timeline(result: BacktestResult, path: Path) -> None:
    from datetime import datetime

    plt = _pyplot()
    t = result.summary["timeline"]
    when = [datetime.fromisoformat(iso_ms(ms).replace("Z", "+00:00")) for ms in t["bin_start_ms"]]
    fig, ax = plt.subplots(figsize=(8, 3.5), dpi=100)
    if t["positives"] is not None:
        ax.step(when, t["positives"], where="post", color="black", linewidth=2, label="actual positives")
    for ref, flagged in t["flagged"].items():
        ax.step(when, flagged, where="post", label=f"flagged by {ref}")
    ax.set(xlabel="event time (UTC)", ylabel="scored events per bin", title="decisions over time")
    ax.legend()
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
