"""Cold tier: the log archived to Parquet, its catalog, replay and DuckDB views."""
