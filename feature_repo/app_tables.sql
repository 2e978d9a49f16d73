-- The example's application tables in livectx_app (idempotent): `livectx cdc sql feature_repo/app_tables.sql`.
CREATE TABLE IF NOT EXISTS products (
    product_id  text PRIMARY KEY,
    name        text NOT NULL,
    description text
);
CREATE TABLE IF NOT EXISTS reviews (
    review_id  text PRIMARY KEY,
    product_id text NOT NULL,
    rating     integer NOT NULL CHECK (rating BETWEEN 1 AND 5),
    body       text NOT NULL
);
