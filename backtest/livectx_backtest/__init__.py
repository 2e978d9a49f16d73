"""livectx backtest: replay (cold tier + Kafka tail), point-in-time training sets, model comparison.

Imports the core (``livectx``) and may run ``livectx_ingest``'s pure pipeline functions, so that replay
and live processing share one implementation. Lands with the cold-tier and backtest issues.
"""
