"""livectx core: settings, errors, event models and serde, topics, local stack control and the CLI root.

The core imports none of the product packages (``livectx_ingest``, ``livectx_agents``,
``livectx_backtest``); they import it. Keep this module free of heavy imports: ``livectx --help`` must
stay fast, so Feast, pandas and friends are imported inside the functions that need them.
"""

from livectx import _metrics_mode  # noqa: F401 - before anything imports Feast (see that module)

__version__ = "0.1.0"
