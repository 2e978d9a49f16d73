"""``livectx init DIR``: a working feature repo for a new domain, like ``feast init``.

The scaffold is deliberately small and complete: ``feature_store.yaml`` wired to the configured stack
(connection values come from the environment livectx sets, see ``livectx env``), one Avro source with its
schema, one stream view, one memory view, a feature service and a generator of synthetic events driven
by the schema. ``livectx feast apply``, ``topics apply``, ``produce --generator <name>``, ``ingest run
features`` and ``ingest run embeddings`` then work on it as they do on the example repo.
"""

from __future__ import annotations

import re
from pathlib import Path

from livectx.errors import LivectxError

FEATURE_STORE_YAML = """\
# Feast repo {project}, scaffolded by `livectx init`. Connection values come from the environment:
#   livectx --repo {folder} feast apply      # livectx fills them in for the configured stack
#   eval "$(livectx env)" && feast apply     # or export them for the plain feast CLI
project: {project}
provider: local
registry: ${{LIVECTX_FEAST_REGISTRY}}
online_store:
  type: redis
  redis_type: ${{LIVECTX_FEAST_REDIS_TYPE}}
  connection_string: ${{LIVECTX_FEAST_REDIS}}
offline_store:
  type: duckdb
entity_key_serialization_version: 3
auth:
  type: no_auth
"""

ENTITIES = '''\
"""Who the features and memory are about."""

from feast import Entity, ValueType

customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.STRING, description="A customer.")
'''

SOURCES = '''\
"""The streams: a Feast KafkaSource per topic, with the schema its records follow.

{wire_doc} `stream_source` adds the topic's partitions and retention, the Kafka key and
value checks, which Feast has no words for.
"""

import json
from datetime import timedelta

from feast.data_format import AvroFormat

from livectx.repo.declare import stream_source

MESSAGE_SCHEMA = {{
    "type": "record",
    "name": "Message",
    "fields": [
        {{"name": "message_id", "type": "string"}},
        {{"name": "customer_id", "type": "string"}},
        {{"name": "channel", "type": "string"}},
        {{"name": "amount", "type": "double"}},
        {{"name": "text", "type": "string"}},
        {{"name": "ts", "type": {{"type": "long", "logicalType": "timestamp-millis"}}}},
    ],
}}

messages = stream_source(
    name="messages",
    topic="{project}.messages",
    schema=AvroFormat(json.dumps(MESSAGE_SCHEMA)),
    timestamp_field="ts",
    key="customer_id",
    grace=timedelta(seconds=30),
    partitions=3,
    retention=timedelta(days=7),
    checks={{"amount": {{"ge": 0, "le": 10_000}}}},
    description="What customers send us, keyed by customer_id.",{wire_arg}
)
'''

FEATURES = '''\
"""Streaming features: Feast StreamFeatureViews the livectx engine keeps fresh in the online store."""

from datetime import timedelta

from entities import customer
from feast import FeatureService
from sources import messages

from livectx.repo.declare import agg, count, stream_view, tumbling

customer_activity_1h = stream_view(
    name="customer_activity_1h",
    source=messages,
    entity=customer,
    window=tumbling(timedelta(hours=1)),
    features=[
        count("messages_1h", description="Messages in the current hour."),
        agg("amount_sum_1h", "sum", "amount", description="Amount over the current hour."),
    ],
    description="How active a customer is this hour.",
)

customer_features = FeatureService(
    name="customer_features", features=[customer_activity_1h], description="What an agent reads about a customer."
)
'''

MEMORY = '''\
"""Semantic memory: texts the embedding worker keeps searchable (what each customer said last)."""

from entities import customer
from sources import messages

from livectx.repo.declare import memory_view

customer_messages = memory_view(
    name="customer_messages",
    source=messages,
    entity=customer,
    text=["text"],
    category="channel",
    description="Each customer's latest message.",
)
'''

GENERATORS = '''\
"""Synthetic traffic for a first end-to-end run: `livectx produce --generator messages --count 1000`."""

import sources

from livectx.repo.declare import generator
from livectx.repo.synthetic import synthetic_records


@generator("messages", "Synthetic messages following the source's schema.")
def messages(seed, start, rate=50.0, customers=100):
    yield from synthetic_records(
        sources.messages, seed, start, rate, keys=customers, choices={{"channel": ["chat", "email", "phone"]}}
    )
'''

FILES = {
    "feature_store.yaml": FEATURE_STORE_YAML,
    "entities.py": ENTITIES,
    "sources.py": SOURCES,
    "features.py": FEATURES,
    "memory.py": MEMORY,
    "generators.py": GENERATORS,
}


_WIRE = {
    "plain": ("Records are schemaless Avro of the schema below (any producer can write them).", ""),
    "confluent": (
        "Records are Avro of the schema below in the Confluent wire format: `livectx schemas apply`\n"
        "registers it under `<topic>-value`, and `livectx produce` writes through the registry.",
        '\n    wire="confluent",',
    ),
}


def scaffold(folder: Path, project: str | None = None, wire: str = "plain") -> list[Path]:
    """Write the scaffold into ``folder`` (created; must be empty). Returns the files written. ``wire``:
    how livectx's producers write the source's records (``stream_source(wire=...)``).

    Raises:
        LivectxError: the folder holds files already, or the project name is not a Feast name.
    """
    project = project or re.sub(r"[^a-z0-9_]", "_", folder.resolve().name.lower()).strip("_") or "my_repo"
    if not re.fullmatch(r"[a-z][a-z0-9_]*", project):
        raise LivectxError(f"project name {project!r}: use lower-case letters, digits and '_', starting with a letter")
    if folder.exists() and any(folder.iterdir()):
        raise LivectxError(f"{folder} is not empty: livectx init writes a new repo into an empty or new folder")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, template in FILES.items():
        path = folder / name
        wire_doc, wire_arg = _WIRE[wire]
        path.write_text(template.format(project=project, folder=folder, wire_doc=wire_doc, wire_arg=wire_arg))
        written.append(path)
    return written
