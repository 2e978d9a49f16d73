"""A backtest's outputs: ``summary.json``, ``report.md`` with PNG plots, and the terminal table.

The plots: precision-recall curves (one per version, its threshold's point marked), score distributions
(fraud vs legitimate, per version) and decisions over time (declines per version against actual frauds).
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


def markdown(result: BacktestResult) -> str:
    s = result.summary
    models = s["models"]
    lines = [
        f"# Backtest: {' vs '.join(m['ref'] for m in models)}",
        "",
        f"Range `{s['range']['from'] or 'start'}` to `{s['range']['to'] or 'end'}` "
        f"on {', '.join(s['range']['topics'])}: "
        f"{s['events']['records']:,} records ({s['events']['from_archive']:,} from the archive, "
        f"{s['events']['from_broker']:,} from the broker), {s['payments']:,} payments scored, "
        f"{s['frauds']:,} of them fraud. Features recomputed as of each payment with the streaming engine's "
        "window state; every version scored the identical inputs.",
        "",
        f"Decision cost = {s['costs']['false_positive']:g} x FP + {s['costs']['false_negative']:g} x FN.",
        "",
        "| model | threshold | precision | recall | F1 | ROC-AUC | declined | FP | FN | cost |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for m in models:
        lines.append(
            f"| {m['ref']} | {m['threshold']:g} | {m['precision']:.4f} | {m['recall']:.4f} | {m['f1']:.4f} | "
            f"{_maybe(m['roc_auc'])} | {m['declined']:,} | {m['fp']:,} | {m['fn']:,} | {m['cost']:,.0f} |"
        )
    if s["events"]["bad"]:
        lines += ["", "Bad records (skipped): " + ", ".join(f"{k}: {v}" for k, v in s["events"]["bad"].items())]
    for d in s["differences"]:
        lines += ["", f"## {d['a']} vs {d['b']}: {d['count']:,} decisions differ", ""]
        if d["examples"]:
            lines += [
                f"| txn | user | time | fraud | score {d['a']} | score {d['b']} |",
                "| --- | --- | --- | --- | --- | --- |",
            ]
            for e in d["examples"]:
                lines.append(
                    f"| {e['txn_id']} | {e['user_id']} | {e['event_time']} | {e['is_fraud']} | "
                    f"{e['score_' + d['a']]:.4f} | {e['score_' + d['b']]:.4f} |"
                )
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
    print_table(
        f"backtest: {s['payments']:,} payments ({s['frauds']:,} fraud) from {s['events']['records']:,} records, "
        f"{s['range']['first_event']} .. {s['range']['last_event']}",
        ["model", "threshold", "precision", "recall", "F1", "ROC-AUC", "declined", "FP", "FN", "cost"],
        [
            (m["ref"], f"{m['threshold']:g}", f"{m['precision']:.4f}", f"{m['recall']:.4f}", f"{m['f1']:.4f}",
             _maybe(m["roc_auc"]), f"{m['declined']:,}", f"{m['fp']:,}", f"{m['fn']:,}", f"{m['cost']:,.0f}")
            for m in s["models"]
        ],
    )  # fmt: skip
    for d in s["differences"]:
        print_table(
            f"{d['a']} vs {d['b']}: {d['count']:,} decisions differ"
            + (f" (first {len(d['examples'])})" if d["examples"] else ""),
            ["txn", "user", "time", "fraud", f"score {d['a']}", f"score {d['b']}"],
            [
                (e["txn_id"], e["user_id"], e["event_time"], e["is_fraud"], f"{e['score_' + d['a']]:.4f}",
                 f"{e['score_' + d['b']]:.4f}")
                for e in d["examples"]
            ],
        )  # fmt: skip


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
    labels = result.payments["is_fraud"]
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=100)
    for model in result.summary["models"]:
        if 0 < labels.sum() < len(labels):
            precision, recall, _ = precision_recall_curve(labels, result.scores[model["ref"]])
            (line,) = ax.plot(recall, precision, label=f"{model['ref']} (F1 {model['f1']:.3f})")
            ax.scatter([model["recall"]], [model["precision"]], color=line.get_color(), zorder=3)
    ax.set(xlabel="recall", ylabel="precision", title="precision-recall (dot: the version's threshold)")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def _plot_scores(result: BacktestResult, path: Path) -> None:
    import numpy as np

    plt = _pyplot()
    labels = result.payments["is_fraud"]
    models = result.summary["models"]
    fig, axes = plt.subplots(1, len(models), figsize=(4.5 * len(models), 3.5), dpi=100, squeeze=False)
    bins = np.linspace(0, 1, 41)
    for ax, model in zip(axes[0], models, strict=True):
        scores = result.scores[model["ref"]]
        ax.hist(scores[~labels], bins=bins, alpha=0.6, label="legitimate", log=True)
        ax.hist(scores[labels], bins=bins, alpha=0.6, label="fraud", log=True)
        ax.axvline(model["threshold"], color="black", linestyle="--", linewidth=1)
        ax.set(title=model["ref"], xlabel="score", ylabel="payments (log)")
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
    ax.step(when, t["frauds"], where="post", color="black", linewidth=2, label="actual frauds")
    for ref, declines in t["declines"].items():
        ax.step(when, declines, where="post", label=f"declined by {ref}")
    ax.set(xlabel="event time (UTC)", ylabel="payments per bin", title="decisions over time")
    ax.legend()
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
