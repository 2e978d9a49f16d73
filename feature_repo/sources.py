"""The example domain's streams: card payments, logins, clicks, support tickets, reviews, documents.

Each is a Feast ``KafkaSource`` built with livectx's ``stream_source``, which adds what Feast cannot say:
the topic's partitions and retention, the Kafka key, value checks and the event-time bounds. Records are
JSON whose fields are the Spark-DDL columns below (``DEFAULT`` marks an optional field).
"""

from datetime import timedelta

from feast.data_format import JsonFormat

from livectx.repo.declare import stream_source

DAY = timedelta(days=1)

transaction = stream_source(
    name="transaction",
    topic="livectx.transactions",
    schema=JsonFormat(
        "event_time TIMESTAMP, txn_id STRING, user_id STRING, card_id STRING, merchant_id STRING, amount DOUBLE, "
        "currency STRING, ip STRING, country STRING, is_fraud BOOLEAN DEFAULT false"
    ),
    timestamp_field="event_time",
    key="user_id",
    retention=7 * DAY,
    checks={
        "amount": {"ge": 0},
        "currency": {"min_length": 3, "max_length": 3},
        "country": {"min_length": 2, "max_length": 2},
    },
    description="Card payments, keyed by user_id. is_fraud is the simulator's label, never a feature.",
)

login = stream_source(
    name="login",
    topic="livectx.logins",
    schema=JsonFormat(
        "event_time TIMESTAMP, login_id STRING, user_id STRING, ip STRING, device_id STRING, success BOOLEAN"
    ),
    timestamp_field="event_time",
    key="user_id",
    retention=7 * DAY,
    description="Login attempts, keyed by user_id.",
)

click = stream_source(
    name="click",
    topic="livectx.clicks",
    schema=JsonFormat(
        "event_time TIMESTAMP, click_id STRING, user_id STRING, session_id STRING, item_id STRING, page STRING"
    ),
    timestamp_field="event_time",
    key="user_id",
    retention=3 * DAY,
    description="Clickstream, keyed by user_id.",
)

support_ticket = stream_source(
    name="support_ticket",
    topic="livectx.tickets",
    schema=JsonFormat(
        "event_time TIMESTAMP, ticket_id STRING, user_id STRING, subject STRING, text STRING, "
        "department STRING DEFAULT NULL, tenant STRING DEFAULT 'default', op STRING DEFAULT 'upsert'"
    ),
    timestamp_field="event_time",
    key="ticket_id",
    retention=30 * DAY,
    description="Support tickets with text, keyed by ticket_id; op='delete' retracts one.",
)

review = stream_source(
    name="review",
    topic="livectx.reviews",
    schema=JsonFormat(
        "event_time TIMESTAMP, review_id STRING, user_id STRING, item_id STRING, rating INT, text STRING, "
        "tenant STRING DEFAULT 'default', op STRING DEFAULT 'upsert'"
    ),
    timestamp_field="event_time",
    key="review_id",
    retention=30 * DAY,
    checks={"rating": {"ge": 1, "le": 5}},
    description="Product reviews with text, keyed by review_id.",
)

document = stream_source(
    name="document",
    topic="livectx.documents",
    schema=JsonFormat(
        "event_time TIMESTAMP, doc_id STRING, title STRING, text STRING, category STRING DEFAULT NULL, "
        "tenant STRING DEFAULT 'default', op STRING DEFAULT 'upsert'"
    ),
    timestamp_field="event_time",
    key="doc_id",
    retention=30 * DAY,
    description="Knowledge-base documents (FAQ, policy, runbook), keyed by doc_id; a null value deletes.",
)
