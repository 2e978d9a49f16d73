"""The fraud agent's running figures: decisions, declines, degraded contexts, and precision/recall.

Apart from the agent because they are evaluation, not deciding: ``agents run fraud`` prints them after a
run, and the confusion counts are against the scenario's ground truth (``is_fraud``), which a real payment
stream would not carry.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FraudStats:
    decided: int = 0
    declined: int = 0
    degraded: int = 0
    #: confusion counts against the scenario's ground truth (``is_fraud``), for evaluation
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    def record(self, declined: bool, is_fraud: bool, degraded: bool) -> None:
        """Count one decision: declined or not, against its label, on a degraded context or not."""
        self.decided += 1
        self.declined += declined
        self.degraded += degraded
        if declined and is_fraud:
            self.tp += 1
        elif declined:
            self.fp += 1
        elif is_fraud:
            self.fn += 1
        else:
            self.tn += 1
