"""``livectx backtest``: training sets and models from the platform's history."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def backtest() -> None:
    """Train and compare models on history (point-in-time features, no leakage)."""


@backtest.command("train-fraud")
@click.option("--seed", type=int, default=1, show_default=True, help="Scenario seed of the training history.")
@click.option("--eval-seed", type=int, default=2, show_default=True, help="Another seed, for out-of-sample figures.")
@click.option("--events", type=click.IntRange(min=1000), default=40_000, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Where to save (joblib).")
def train_fraud(seed: int, eval_seed: int, events: int, out: Path) -> None:
    """Train the fraud agent's model on the fraud scenario and report out-of-sample precision/recall."""
    from livectx.cli.common import console, print_table
    from livectx_backtest.fraud_model import evaluate, save, train_fraud_model, training_rows

    if seed == eval_seed:
        raise click.BadParameter("must differ from --seed (figures must be out of sample)", param_hint="--eval-seed")
    with console(stderr=True).status(f"recomputing point-in-time features for {events:,} events and training..."):
        model = train_fraud_model(seed, events)
        result = evaluate(model, *training_rows(eval_seed, events))
    save(model, out)
    print_table(
        f"fraud model (trained on seed {seed}, judged on seed {eval_seed})",
        ["figure", "value"],
        [
            ("payments judged", result.payments),
            ("frauds among them", result.frauds),
            ("precision", f"{result.precision:.3f}"),
            ("recall", f"{result.recall:.3f}"),
            ("saved to", str(out)),
        ],
    )
    click.echo(f"use it: livectx agents run fraud --model {out}")
