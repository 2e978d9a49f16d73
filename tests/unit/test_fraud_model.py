"""A fraud model trained on one seed's point-in-time history catches the attack on another seed."""

from __future__ import annotations

from pathlib import Path

from livectx_agents.example_fraud import ModelScorer
from livectx_backtest.example_fraud_model import evaluate, save, train_fraud_model, training_rows

from tests.example import FRAUD_MODEL_FEATURES


def test_trained_model_generalises_to_another_seed_and_loads_into_the_agent(tmp_path: Path) -> None:
    model = train_fraud_model(seed=1, events=20_000)
    features, labels = training_rows(seed=2, events=20_000)
    result = evaluate(model, features, labels)
    assert result.positives >= 200
    assert result.precision >= 0.9 and result.recall >= 0.9, result
    again = evaluate(train_fraud_model(seed=1, events=20_000), features, labels)
    assert again == result  # deterministic: same data, same model, same figures

    save(model, tmp_path / "fraud.joblib")
    scorer = ModelScorer.load(tmp_path / "fraud.joblib")
    fraud_row = next(row for row, y in zip(features, labels, strict=True) if y)
    named = dict(zip(FRAUD_MODEL_FEATURES, fraud_row, strict=False))
    probability, reasons = scorer.score(named, fraud_row[-1])
    assert probability == float(model.predict_proba([fraud_row])[0][1]) and reasons
