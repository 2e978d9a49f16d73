"""The example domain's streaming features: Feast ``StreamFeatureView``s the livectx engine runs.

Windows: tumbling (Feast's ``slide_interval`` equal to ``time_window``), hopping (a smaller slide) and
sliding (livectx's extension: the span up to each user's newest event). Each view's history is the
engine's offline copy under the data dir, which Feast's ``get_historical_features`` reads.
"""

from datetime import timedelta

from entities import card, user
from feast import FeatureService
from sources import click, login, transaction

from livectx.repo.declare import (
    agg,
    count,
    count_distinct,
    decision_service,
    hopping,
    sliding,
    stream_view,
    tumbling,
)

MIN = timedelta(minutes=1)

user_txn_5m = stream_view(
    name="user_txn_5m",
    source=transaction,
    entity=user,
    window=tumbling(5 * MIN, grace=timedelta(seconds=30)),
    features=[
        count("txn_count_5m", description="Payments in the current 5-minute window."),
        agg("txn_amount_max_5m", "max", "amount", description="Largest payment in the window."),
    ],
    description="Short-window payment velocity per user.",
)

user_txn_1h = stream_view(
    name="user_txn_1h",
    source=transaction,
    entity=user,
    window=hopping(60 * MIN, 15 * MIN, grace=MIN),
    features=[
        agg("txn_amount_sum_1h", "sum", "amount", description="Spend over the last hour (15-minute hops)."),
        agg("txn_amount_mean_1h", "mean", "amount", description="Mean payment over the last hour."),
        agg("txn_amount_min_1h", "min", "amount", description="Smallest payment over the last hour."),
        agg("last_txn_amount", "last", "amount", description="The most recent payment's amount."),
    ],
    description="Hourly spend profile per user.",
)

user_txn_24h = stream_view(
    name="user_txn_24h",
    source=transaction,
    entity=user,
    window=tumbling(24 * 60 * MIN, grace=5 * MIN),
    features=[
        count_distinct("distinct_merchants_24h", "merchant_id", description="Distinct merchants paid today (UTC day)."),
    ],
    description="Daily merchant spread per user.",
)

user_txn_10m = stream_view(
    name="user_txn_10m",
    source=transaction,
    entity=user,
    window=sliding(10 * MIN, grace=timedelta(seconds=30)),
    features=[
        count_distinct(
            "distinct_ips_10m",
            "ip",
            description="Distinct IPs paying in the 10 minutes up to the user's newest payment.",
        ),
        count_distinct("distinct_cards_10m", "card_id", description="Distinct cards in that span."),
    ],
    description="Card-testing signal: many IPs and cards in a short span.",
)

user_login_5m = stream_view(
    name="user_login_5m",
    source=login,
    entity=user,
    window=tumbling(5 * MIN, grace=timedelta(seconds=30)),
    features=[
        count(
            "login_failures_5m", where=("success", False), description="Failed logins in the current 5-minute window."
        ),
    ],
    description="Account-takeover signal.",
)

user_click_1h = stream_view(
    name="user_click_1h",
    source=click,
    entity=user,
    window=sliding(60 * MIN, grace=MIN),
    features=[count("clicks_last_1h", description="Clicks in the hour up to the user's newest click.")],
    description="Engagement per user.",
)

card_txn_1h = stream_view(
    name="card_txn_1h",
    source=transaction,
    entity=card,  # the topic is keyed by user_id: the engine re-keys it by card_id through a repartition topic
    window=tumbling(60 * MIN, grace=MIN),
    features=[
        count("card_txn_count_1h", description="Payments with this card in the current hour."),
        agg("card_amount_sum_1h", "sum", "amount", description="Spend on this card in the current hour."),
        count_distinct("card_distinct_ips_1h", "ip", description="Distinct IPs using this card this hour."),
    ],
    description="Per-card velocity (a card-testing attack hits one card from many IPs).",
)

# The fraud model's decision: it scores each payment from these features about the paying user (the model
# columns, in input order: what training writes and the fraud agent reads), then the payment's amount.
fraud_features = decision_service(
    "fraud_features",
    [user_txn_5m, user_txn_1h, user_txn_24h, user_txn_10m, user_login_5m],
    scores=transaction,
    id_field="txn_id",
    label="is_fraud",
    inputs=("amount",),
    columns=(
        "txn_count_5m",
        "txn_amount_max_5m",
        "txn_amount_sum_1h",
        "distinct_merchants_24h",
        "distinct_ips_10m",
        "distinct_cards_10m",
        "login_failures_5m",
    ),
    action="decline",
    description="What the fraud agent reads about a paying user.",
)
card_features = FeatureService(name="card_features", features=[card_txn_1h], description="What is known of a card.")
engagement_features = FeatureService(
    name="engagement_features", features=[user_click_1h], description="How engaged a user is right now."
)
