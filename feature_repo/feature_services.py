"""Feature services: the named feature sets a model or agent asks for."""

from feast import FeatureService
from feature_views import user_txn_totals

fraud_features = FeatureService(
    name="fraud_features",
    features=[user_txn_totals],
    description="What the fraud agent reads at inference time.",
)
