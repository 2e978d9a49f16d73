"""The streaming feature engine: Quix Streams windows over Kafka, materialised into Feast's Redis layout
and Parquet. Built from :mod:`livectx.features.catalog`; see ``worker.py`` for the guarantees."""
