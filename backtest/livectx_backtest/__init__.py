"""livectx backtest: replay (cold tier + Kafka tail), point-in-time training sets, model comparison.

Imports the core (``livectx``) and may run ``livectx_ingest``'s pure pipeline functions, so that replay
and live processing share one implementation. Knows no domain: what it scores is the decision a feature
repo declares (:mod:`livectx.repo.decisions`); its ``example_*`` modules belong to the example repo.
"""
