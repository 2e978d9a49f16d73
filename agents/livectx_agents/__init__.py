"""livectx agents: the context client (features + similar items + freshness), async enrichment and the
example agents. Imports the core (``livectx``) only; never ``livectx_ingest`` or ``livectx_backtest``.

Lands with the agent-context issue; the package exists now so the layout and import contracts hold.
"""
