"""Producing through the registry: each source declared ``wire="confluent"`` is written in the Confluent
wire format by confluent-kafka's own serializers (``AvroSerializer``, ``JSONSerializer``).

Registration happens only through ``livectx schemas apply``: the serializers never register
(``auto.register.schemas=False``); they look up the id of the schema the source *declares* under its
subject. A producer therefore writes what the repo says or nothing: :meth:`RegistryEncoder.check`, run
before anything is produced, fails with one line when that schema is not registered (a new source, or a
changed declaration not applied yet). The subject is the declared topic's (``<topic>-value``) even when
the records go to a renamed topic (tests, migrations), because that is where ``apply`` registered it.

Sources declared ``plain`` (the default) are written by :func:`livectx.serde.encode` as before, so one
encoder serves a repo whatever each source declares. Both carry the ``livectx-schema`` header replays use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from pydantic import BaseModel

from livectx import serde
from livectx.errors import LivectxError
from livectx.events import Event
from livectx.repo.sources import SourceSpec
from livectx.schemas.derive import DeclaredSchema, declared_schema


class SchemaNotRegistered(LivectxError):
    """A source produces in the Confluent wire format, but its declared schema is not in the registry."""


class RegistryEncoder:
    """``(key, value, headers)`` for events of declared sources, framed through the registry where a
    source says ``wire="confluent"``. ``client`` is a ``SchemaRegistryClient`` (or a fake in tests),
    created by ``make_client`` only if some source needs one."""

    def __init__(
        self,
        sources: Iterable[SourceSpec],
        make_client: Callable[[], Any],
        url: str = "the registry",
        platform: Iterable[tuple[type[BaseModel], DeclaredSchema]] = (),
    ):
        self._declared: dict[type[BaseModel], DeclaredSchema] = {
            spec.model: declared_schema(spec) for spec in sources if spec.wire == "confluent"
        }
        # The platform's own events (decisions, :mod:`livectx.schemas.platform`), framed where they say so.
        self._declared.update({model: d for model, d in platform if d.wire == "confluent"})
        self._make_client = make_client
        self._client: Any = None
        self._url = url
        self._serializers: dict[type[BaseModel], Any] = {}

    @classmethod
    def from_settings(
        cls,
        settings: Any,
        sources: Iterable[SourceSpec],
        platform: Iterable[tuple[type[BaseModel], DeclaredSchema]] = (),
    ) -> RegistryEncoder:
        def make_client() -> Any:
            from confluent_kafka.schema_registry import SchemaRegistryClient

            return SchemaRegistryClient(settings.schema_registry_client_config())

        return cls(sources, make_client, settings.schema_registry_url, platform)

    @property
    def framed_sources(self) -> list[str]:
        return [d.source for d in self._declared.values()]

    def check(self) -> dict[str, int]:
        """Look up every framed source's declared schema: ``{source: schema id}``.

        Raises:
            SchemaNotRegistered: not registered under its subject (one line: run ``livectx schemas apply``).
            NotReachableError / RegistryError: the registry does not answer, or refuses the request.
        """
        from livectx.schemas.client import ConfluentRegistry, RegistryError

        if not self._declared:
            return {}
        registry = ConfluentRegistry.over(self._registry(), self._url)  # its errors as one readable line
        ids = {}
        for declared in self._declared.values():
            try:
                found = registry.schema_id(declared.subject, declared.schema_type, declared.schema_str)
            except RegistryError as exc:
                raise RegistryError(f"source {declared.source}: {exc}") from None
            if found is None:
                raise SchemaNotRegistered(
                    f"source {declared.source} produces in the Confluent wire format, but its declared "
                    f"{declared.schema_type} schema is not registered under {declared.subject} at {self._url}: "
                    "run `livectx schemas apply` (producers never register schemas)"
                )
            ids[declared.source] = found
        return ids

    def encode(self, event: Event, topic: str) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
        """The record for ``event`` on ``topic`` (framed or plain, as its source declares)."""
        declared = self._declared.get(type(event))
        if declared is None:
            return serde.encode(event)
        value = self._framed_value(event, declared, topic)
        return event.key.encode(), value, [(serde.SCHEMA_HEADER, serde.schema_id(type(event)).encode())]

    def encode_value(self, record: BaseModel, topic: str) -> bytes:
        """The value of a platform record that is not an event (a model version): framed where declared,
        else its JSON."""
        declared = self._declared.get(type(record))  # type: ignore[arg-type]
        if declared is None:
            return record.model_dump_json().encode()
        return self._framed_value(record, declared, topic)

    def _framed_value(self, record: BaseModel, declared: DeclaredSchema, topic: str) -> bytes:
        from confluent_kafka.serialization import MessageField, SerializationContext

        serializer = self._serializers.get(type(record))  # type: ignore[arg-type]
        if serializer is None:
            serializer = self._serializers[type(record)] = self._serializer(declared)  # type: ignore[index]
        try:
            return serializer(record, SerializationContext(topic, MessageField.VALUE))  # type: ignore[no-any-return]
        except Exception as exc:
            from confluent_kafka.schema_registry.error import SchemaRegistryError

            if isinstance(exc, SchemaRegistryError) and exc.http_status_code == 404:
                raise SchemaNotRegistered(
                    f"source {declared.source}: its declared schema is not registered under {declared.subject}: "
                    "run `livectx schemas apply`"
                ) from None
            raise LivectxError(
                f"source {declared.source}: cannot serialise through the registry at {self._url}: "
                f"{type(exc).__name__}: {exc}"
            ) from None

    def _registry(self) -> Any:
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def _serializer(self, declared: DeclaredSchema) -> Any:
        subject = declared.subject
        conf = {
            "auto.register.schemas": False,  # registration is `livectx schemas apply`'s alone
            "use.latest.version": False,  # the declared schema's own id, not whatever is newest
            "subject.name.strategy": lambda _ctx, _record_name: subject,
        }
        if declared.schema_type == "AVRO":
            from confluent_kafka.schema_registry.avro import AvroSerializer

            return AvroSerializer(self._registry(), declared.schema_str, to_dict=_avro_dict, conf=conf)
        from confluent_kafka.schema_registry.json_schema import JSONSerializer

        return JSONSerializer(declared.schema_str, self._registry(), to_dict=_json_dict, conf=conf)


def _avro_dict(event: Any, _ctx: Any) -> dict[str, Any]:
    return event.model_dump(by_alias=True)  # datetimes stay datetimes: fastavro writes the logical types


def _json_dict(event: Any, _ctx: Any) -> dict[str, Any]:
    return event.model_dump(mode="json", by_alias=True)
