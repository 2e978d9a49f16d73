"""Change data capture: Debezium on Kafka Connect, driven from the repo's ``cdc_source`` declarations.

- :mod:`livectx.cdc.envelope`: a Debezium change event as the declared row (what serde validates);
- :mod:`livectx.cdc.connector`: the connector config of a declared table, and Connect's REST API;
- :mod:`livectx.cdc.database`: publication, replication slot and replica identity in Postgres;
- :mod:`livectx.cdc.manage`: ``plan``, ``apply``, ``status`` and ``drop`` over all of them;
- :mod:`livectx.cdc.changelog`: aggregates over a table's live rows from its changelog (retraction).
"""
