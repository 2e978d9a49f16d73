"""Feature views of the streaming feature engine, generated from livectx.features.catalog."""

from entities import card, document, merchant, user
from feast import FeatureService

from livectx.features.catalog import FEATURE_GROUPS
from livectx.features.feast_objects import feature_views
from livectx.settings import get_settings

_views = feature_views(
    FEATURE_GROUPS,
    {"user": user, "card": card, "merchant": merchant, "document": document},
    get_settings().data_dir / "offline",
)
# feast apply collects module-level objects: expose each generated view under its own name.
globals().update({view.name: view for view in _views})

fraud_features = FeatureService(
    name="fraud_features",
    features=[v for v in _views if v.name.startswith(("user_txn", "user_login"))],
    description="Windowed payment and login features the fraud agent reads.",
)
