"""The archiver: Kafka topics to Parquet files in the cold tier."""
