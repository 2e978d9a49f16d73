"""The streaming feature engine: windowed aggregations over Kafka, checkpointed exactly-once into Feast's
Redis layout, with a Parquet copy. Built from :mod:`livectx.features.catalog`; see ``engine.py``."""
