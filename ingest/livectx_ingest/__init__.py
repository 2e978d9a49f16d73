"""livectx ingestion workers: Kafka in, Feast online store / vector store / archive out.

Imports the core (``livectx``) only. ``livectx_backtest`` may reuse the pure pipeline functions here so
that replay and live processing share one implementation.
"""
