"""A declared table's Debezium connector config, and the Kafka Connect REST calls ``livectx cdc`` makes.

The config makes Debezium's records what livectx's sources read: values are plain JSON envelopes (the JSON
converter without schemas), the Kafka key is the key column's value as a string (``ExtractField$Key`` then
the string converter), so a tombstone's key is the entity's id, and the topic is the declared one
(``RegexRouter``), created by Connect with the declared partitions if ``topics apply`` has not. Latency is
tuned: Debezium polls its queue every ``LIVECTX_CDC_POLL_INTERVAL_MS`` (default 500 ms in Debezium) and
the producer sends without lingering (``LIVECTX_CDC_LINGER_MS``).
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from livectx.errors import CdcError
from livectx.repo.cdc import CdcTable
from livectx.settings import Settings

#: Config keys whose values are never shown (``cdc plan`` prints the rest).
SECRET_KEYS = {"database.password"}


def connector_config(table: CdcTable, settings: Settings) -> dict[str, str]:
    """The connector's config as Connect stores it (all values strings)."""
    db = settings.cdc_database(table.database)
    return {
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "tasks.max": "1",
        "plugin.name": "pgoutput",
        "database.hostname": str(db["host"]),
        "database.port": str(db["port"]),
        "database.user": str(db["user"]),
        "database.password": str(db["password"]),
        "database.dbname": table.database,
        "topic.prefix": table.connector,
        "table.include.list": table.qualified,
        "column.include.list": ",".join(f"{table.qualified}.{c}" for c in table.columns),
        # ``cdc apply`` creates both, so plan shows them and drop removes them.
        "publication.name": table.connector,
        "publication.autocreate.mode": "disabled",
        "slot.name": table.connector,
        "snapshot.mode": "initial",
        "tombstones.on.delete": "true",
        # A quiet table on a busy server: Debezium confirms WAL only as far as changes it receives, so each
        # heartbeat writes a transactional logical message into this database's WAL (no table touched);
        # measured here: an idle slot's retained WAL went from 5.6 MB, growing, to under 1 kB.
        "heartbeat.interval.ms": str(settings.cdc.heartbeat_interval_ms),
        "heartbeat.action.query": "SELECT pg_logical_emit_message(true, 'livectx-heartbeat', now()::text)",
        "decimal.handling.mode": "double",
        "time.precision.mode": "connect",
        "poll.interval.ms": str(settings.cdc.poll_interval_ms),
        "producer.override.linger.ms": str(settings.cdc.linger_ms),
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "false",
        "transforms": "route,key",
        "transforms.route.type": "org.apache.kafka.connect.transforms.RegexRouter",
        # Only the table's topic: Debezium's heartbeats keep their own topic.
        "transforms.route.regex": re.escape(f"{table.connector}.{table.qualified}"),
        "transforms.route.replacement": table.topic,
        "transforms.key.type": "org.apache.kafka.connect.transforms.ExtractField$Key",
        "transforms.key.field": table.key,
        "transforms.key.predicate": "table",  # heartbeats' keys have no such field
        "predicates": "table",
        "predicates.table.type": "org.apache.kafka.connect.transforms.predicates.TopicNameMatches",
        "predicates.table.pattern": re.escape(table.topic),
        "topic.creation.default.replication.factor": "-1",
        "topic.creation.default.partitions": str(table.partitions),
    }


def shown(config: dict[str, str]) -> dict[str, str]:
    """``config`` with its secrets masked, for plans and logs."""
    return {k: ("****" if k in SECRET_KEYS and v else v) for k, v in config.items()}


class ConnectClient:
    """The few Kafka Connect REST calls CDC needs; every failure is a :class:`CdcError` naming the fix."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url
        self._http = httpx.Client(base_url=url, timeout=timeout_s)

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise CdcError(
                f"Kafka Connect at {self.url} is not reachable ({exc.__class__.__name__}): run "
                "`livectx stack up --with cdc` or set LIVECTX_CDC_CONNECT_URL"
            ) from None
        if response.status_code >= 400 and response.status_code != 404:
            try:
                message = response.json().get("message", response.text)
            except ValueError:
                message = response.text
            raise CdcError(f"Kafka Connect refused {method} {path}: {message[:500]}")
        return response

    def config(self, name: str) -> dict[str, str] | None:
        response = self._call("GET", f"/connectors/{name}/config")
        return None if response.status_code == 404 else response.json()

    def put_config(self, name: str, config: dict[str, str]) -> None:
        """Create or update (Connect restarts the connector's tasks with the new config)."""
        self._call("PUT", f"/connectors/{name}/config", json=config)

    def status(self, name: str) -> dict[str, Any] | None:
        response = self._call("GET", f"/connectors/{name}/status")
        return None if response.status_code == 404 else response.json()

    def stop(self, name: str) -> None:
        self._call("PUT", f"/connectors/{name}/stop")

    def delete_offsets(self, name: str) -> None:
        """Forget the connector's source offsets (needs it stopped), so a new one snapshots afresh."""
        self._call("DELETE", f"/connectors/{name}/offsets")

    def delete(self, name: str) -> bool:
        return self._call("DELETE", f"/connectors/{name}").status_code != 404

    def restart(self, name: str) -> None:
        """Restart the connector's failed instances (the connector itself and its tasks)."""
        self._call("POST", f"/connectors/{name}/restart", params={"includeTasks": "true", "onlyFailed": "true"})

    def close(self) -> None:
        self._http.close()
