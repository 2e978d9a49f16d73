"""Feature views of the streaming feature engine, generated from livectx.features.catalog."""

from entities import card, document, merchant, user
from feast import FeatureService

from livectx.features.catalog import FEATURE_GROUPS, FEATURE_SERVICES
from livectx.features.feast_objects import feature_views
from livectx.settings import get_settings

_views = feature_views(
    FEATURE_GROUPS,
    {"user": user, "card": card, "merchant": merchant, "document": document},
    get_settings().offline_dir,
)
# feast apply collects module-level objects: expose each generated view under its own name.
globals().update({view.name: view for view in _views})

_by_name = {view.name: view for view in _views}
globals().update(
    {
        name: FeatureService(name=name, features=[_by_name[group] for group in groups])
        for name, groups in FEATURE_SERVICES.items()
    }
)
