"""Feature views: the schemas agents read through Feast."""

from datetime import timedelta

from entities import user
from feast import FeatureView, Field
from feast.types import Float64, Int64
from sources import user_txn_totals_push

user_txn_totals = FeatureView(
    name="user_txn_totals",
    entities=[user],
    ttl=timedelta(days=30),
    schema=[
        Field(name="txn_count_total", dtype=Int64, description="Transactions seen for the user."),
        Field(name="txn_amount_total", dtype=Float64, description="Sum of their amounts (EUR)."),
    ],
    source=user_txn_totals_push,
    online=True,
    description="Per-user running totals from the first ingest slice.",
)
