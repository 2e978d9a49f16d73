"""The example's application database (``livectx_app`` on the stack's Postgres), captured by Debezium.

Two tables, created by ``feature_repo/app_tables.sql`` (``livectx cdc sql feature_repo/app_tables.sql``):
``reviews`` (a review of a product: its text and a 1-5 rating) and ``products``. Each row change reaches
Kafka as a Debezium change event (``livectx cdc apply``); the memory views keep the vector index equal to the
tables, and ``app_review_stats`` keeps each product's review count and mean rating equal to the reviews table
(an update retracts the row's old rating, a delete its whole contribution).
"""

import entities
from feast import Entity, ValueType
from feast.data_format import JsonFormat

from livectx.repo.cdc import cdc_source, table_view
from livectx.repo.declare import agg, count, memory_view

product = Entity(name="product", join_keys=["product_id"], value_type=ValueType.STRING, description="A product.")

app_review = cdc_source(
    name="app_review",
    table="reviews",
    topic="livectx.app.reviews",
    schema=JsonFormat(
        "review_id STRING, product_id STRING DEFAULT NULL, rating INT DEFAULT NULL, body STRING DEFAULT NULL"
    ),
    key="review_id",
    description="Rows of livectx_app.public.reviews, as Debezium change events keyed by review_id.",
)

app_product = cdc_source(
    name="app_product",
    table="products",
    topic="livectx.app.products",
    schema=JsonFormat("product_id STRING, name STRING DEFAULT NULL, description STRING DEFAULT NULL"),
    key="product_id",
    description="Rows of livectx_app.public.products, as Debezium change events keyed by product_id.",
)

app_reviews_memory = memory_view(
    name="app_reviews_memory",
    source=app_review,
    entity=entities.review,
    text=["body"],
    category="product_id",
    metadata=["product_id", "rating"],
    description="The reviews table, searchable: a row's insert, update and delete reach the index.",
)

app_products_memory = memory_view(
    name="app_products_memory",
    source=app_product,
    entity=product,
    text=["name", "description"],
    description="The products table, searchable by name and description.",
)

app_review_stats = table_view(
    name="app_review_stats",
    source=app_review,
    entity=product,
    features=[
        count("review_count", description="Reviews of the product in the table now."),
        agg("mean_rating", "mean", "rating", description="Mean rating of those reviews."),
    ],
    description="Per product, over the reviews table's current rows (not a window of changes).",
)
