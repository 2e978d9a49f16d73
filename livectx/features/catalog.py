"""The platform's streaming features. Add a feature here and it appears in Feast, in the engine and in
the offline recomputation; nothing else lists them."""

from __future__ import annotations

from datetime import timedelta

from livectx.events import Click, Login, Transaction
from livectx.features.spec import Feature, FeatureGroup, Window
from livectx.topics import CLICKS, LOGINS, TRANSACTIONS

MIN = timedelta(minutes=1)

FEATURE_GROUPS: tuple[FeatureGroup, ...] = (
    FeatureGroup(
        "user_txn_5m",
        TRANSACTIONS,
        Transaction,
        "user",
        "user_id",
        Window("tumbling", 5 * MIN, grace=timedelta(seconds=30)),
        (
            Feature("txn_count_5m", "count", description="Payments in the current 5-minute window."),
            Feature("txn_amount_max_5m", "max", "amount", description="Largest payment in the window."),
        ),
        "Short-window payment velocity per user.",
    ),
    FeatureGroup(
        "user_txn_1h",
        TRANSACTIONS,
        Transaction,
        "user",
        "user_id",
        Window("hopping", 60 * MIN, grace=MIN, step=15 * MIN),
        (
            Feature("txn_amount_sum_1h", "sum", "amount", description="Spend over the last hour (15-minute hops)."),
            Feature("txn_amount_mean_1h", "mean", "amount", description="Mean payment over the last hour."),
            Feature("txn_amount_min_1h", "min", "amount", description="Smallest payment over the last hour."),
            Feature("last_txn_amount", "last", "amount", description="The most recent payment's amount."),
        ),
        "Hourly spend profile per user.",
    ),
    FeatureGroup(
        "user_txn_24h",
        TRANSACTIONS,
        Transaction,
        "user",
        "user_id",
        Window("tumbling", 24 * 60 * MIN, grace=5 * MIN),
        (
            Feature(
                "distinct_merchants_24h",
                "distinct_count",
                "merchant_id",
                description="Distinct merchants paid today (UTC day).",
            ),
        ),
        "Daily merchant spread per user.",
    ),
    FeatureGroup(
        "user_txn_10m",
        TRANSACTIONS,
        Transaction,
        "user",
        "user_id",
        Window("sliding", 10 * MIN, grace=timedelta(seconds=30)),
        (
            Feature(
                "distinct_ips_10m",
                "distinct_count",
                "ip",
                description="Distinct IPs paying in the 10 minutes up to the user's newest payment.",
            ),
            Feature("distinct_cards_10m", "distinct_count", "card_id", description="Distinct cards in that span."),
        ),
        "Card-testing signal: many IPs and cards in a short span.",
    ),
    FeatureGroup(
        "user_login_5m",
        LOGINS,
        Login,
        "user",
        "user_id",
        Window("tumbling", 5 * MIN, grace=timedelta(seconds=30)),
        (
            Feature(
                "login_failures_5m",
                "count",
                where=("success", False),
                description="Failed logins in the current 5-minute window.",
            ),
        ),
        "Account-takeover signal.",
    ),
    FeatureGroup(
        "user_click_1h",
        CLICKS,
        Click,
        "user",
        "user_id",
        Window("sliding", 60 * MIN, grace=MIN),
        (Feature("clicks_last_1h", "count", description="Clicks in the hour up to the user's newest click."),),
        "Engagement per user.",
    ),
)


def group_named(name: str) -> FeatureGroup:
    for group in FEATURE_GROUPS:
        if group.name == name:
            return group
    raise KeyError(name)


#: Feature services: what a model or agent reads, by name. ``feature_repo`` turns each into a Feast
#: ``FeatureService``; the fast read path resolves them here, without a registry round trip.
FEATURE_SERVICES: dict[str, tuple[str, ...]] = {
    "fraud_features": ("user_txn_5m", "user_txn_1h", "user_txn_24h", "user_txn_10m", "user_login_5m"),
    "engagement_features": ("user_click_1h",),
}

#: The fraud model's inputs, in column order: what training writes and the fraud agent reads.
FRAUD_MODEL_FEATURES: tuple[str, ...] = (
    "txn_count_5m",
    "txn_amount_max_5m",
    "txn_amount_sum_1h",
    "distinct_merchants_24h",
    "distinct_ips_10m",
    "distinct_cards_10m",
    "login_failures_5m",
)
