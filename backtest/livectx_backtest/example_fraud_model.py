"""The example domain's fraud model: :mod:`livectx_backtest.train` on the example repo's ``fraud_features``
decision and its ``fraud`` generator, under the names the example's tests and benchmarks use.

Product code never imports this module; ``livectx backtest train --generator fraud`` trains the same model.
"""

from __future__ import annotations

from typing import Any

from livectx.repo import current_repo
from livectx_backtest import train as trainer
from livectx_backtest.train import Evaluation, evaluate, save

SERVICE, GENERATOR = "fraud_features", "fraud"


def training_rows(seed: int, events: int) -> tuple[list[list[float]], list[int]]:
    """One row per payment of the fraud scenario's first ``events`` events, and its ``is_fraud`` label."""
    return trainer.training_rows(current_repo().decision(SERVICE), GENERATOR, seed, events)


def train_fraud_model(seed: int = 1, events: int = 40_000) -> Any:
    """The fraud agent's model: deterministic, trained on seed ``seed``'s history."""
    return trainer.train(current_repo().decision(SERVICE), GENERATOR, seed, events)


__all__ = ["Evaluation", "evaluate", "save", "train_fraud_model", "training_rows"]
