"""The registry as :mod:`livectx.schemas.plan` needs it: a few calls over confluent-kafka's client.

``Registry`` is the narrow interface the plan is written against (a fake implements it in the unit tests);
:class:`ConfluentRegistry` implements it with ``confluent_kafka.schema_registry.SchemaRegistryClient``,
which speaks to any Confluent-compatible registry (Confluent, Apicurio's ``/apis/ccompat/v7``, Karapace,
Redpanda). Its errors become one readable line: "not found" is an answer (``None``/empty), an
unreachable registry a :class:`~livectx.errors.NotReachableError`, refused credentials a
:class:`~livectx.errors.LivectxError`. The URL in messages never carries credentials (the settings keep
them apart), and the credentials themselves are never formatted into anything.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from livectx.errors import LivectxError, NotReachableError
from livectx.settings import Settings

T = TypeVar("T")


class RegistryError(LivectxError):
    """The registry refused a request; the message says which and why."""


class Registry(Protocol):
    def compatibility(self, subject: str) -> str | None:
        """The subject's own level, ``None`` if it has none (the registry's global default applies)."""
        ...

    def versions(self, subject: str) -> list[tuple[int, dict[str, Any]]]:
        """Every registered version of the subject, oldest first, with its parsed schema."""
        ...

    def find(self, subject: str, schema_type: str, schema_str: str) -> int | None:
        """The version already holding this schema, if any."""
        ...

    def test(self, subject: str, schema_type: str, schema_str: str) -> tuple[bool, list[str]]:
        """The registry's verdict under the subject's level (against every version the level names)."""
        ...

    def set_compatibility(self, subject: str, level: str | None) -> None:
        """Set the subject's level (``None``: remove it, so the global default applies again)."""
        ...

    def register(self, subject: str, schema_type: str, schema_str: str) -> tuple[int, int]:
        """Register a new version; returns (schema id, version)."""
        ...


class ConfluentRegistry:
    """:class:`Registry` over ``SchemaRegistryClient``."""

    def __init__(self, settings: Settings, client: Any = None) -> None:
        from confluent_kafka.schema_registry import SchemaRegistryClient

        self.url = settings.schema_registry_url
        self.client = client or SchemaRegistryClient(settings.schema_registry_client_config())

    @classmethod
    def over(cls, client: Any, url: str) -> ConfluentRegistry:
        """Over an existing client (a producer's), ``url`` naming it in messages."""
        registry = cls.__new__(cls)
        registry.url, registry.client = url, client
        return registry

    def schema_id(self, subject: str, schema_type: str, schema_str: str) -> int | None:
        """The id of this schema under the subject, ``None`` if it is not registered there."""
        registered = self._call(lambda: self.client.lookup_schema(subject, _schema(schema_type, schema_str)), None)
        return None if registered is None else registered.schema_id

    def compatibility(self, subject: str) -> str | None:
        return self._call(lambda: self.client.get_compatibility(subject), missing=None)

    def versions(self, subject: str) -> list[tuple[int, dict[str, Any]]]:
        numbers = self._call(lambda: self.client.get_versions(subject), missing=[])
        found = []
        for number in sorted(numbers):
            registered = self._call(lambda n=number: self.client.get_version(subject, n))
            found.append((registered.version, json.loads(registered.schema.schema_str)))
        return found

    def find(self, subject: str, schema_type: str, schema_str: str) -> int | None:
        registered = self._call(lambda: self.client.lookup_schema(subject, _schema(schema_type, schema_str)), None)
        return None if registered is None else registered.version

    def test(self, subject: str, schema_type: str, schema_str: str) -> tuple[bool, list[str]]:
        schema = _schema(schema_type, schema_str)
        rest = getattr(self.client, "_rest_client", None)
        if rest is None:  # another client: its public call gives the verdict only
            return self._call(lambda: self.client.test_compatibility_all_versions(subject, schema)), []
        # The public test_compatibility* drop the registry's messages; ``verbose`` asks for them, through
        # the client's own REST session (same URL, auth and retries).
        path = f"compatibility/subjects/{_quote(subject)}/versions?verbose=true"
        response = self._call(lambda: rest.post(path, body=schema.to_dict()))
        return bool(response.get("is_compatible")), [str(m) for m in response.get("messages") or []]

    def set_compatibility(self, subject: str, level: str | None) -> None:
        if level is None:
            self._call(lambda: self.client.delete_config(subject), missing=None)
        else:
            self._call(lambda: self.client.set_compatibility(subject, level))

    def register(self, subject: str, schema_type: str, schema_str: str) -> tuple[int, int]:
        schema = _schema(schema_type, schema_str)
        schema_id = self._call(lambda: self.client.register_schema(subject, schema))
        version = self._call(lambda: self.client.lookup_schema(subject, schema)).version
        return schema_id, version

    def _call(self, call: Callable[[], T], missing: Any = ...) -> T:
        """Run one request; a 404 returns ``missing`` when given, every other failure is one line."""
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        try:
            return call()
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404 and missing is not ...:
                return missing  # type: ignore[no-any-return]
            if exc.http_status_code in (401, 403):
                raise RegistryError(
                    f"the schema registry at {self.url} refused the credentials (HTTP {exc.http_status_code}): "
                    "check LIVECTX_SCHEMA_REGISTRY_USER / LIVECTX_SCHEMA_REGISTRY_PASSWORD"
                ) from None
            raise RegistryError(
                f"the schema registry at {self.url} answered {exc.http_status_code}: {exc.error_message}"
            ) from None
        except LivectxError:
            raise
        except Exception as exc:  # httpx's connect/timeout errors and the like
            raise NotReachableError(
                f"the schema registry at {self.url} does not answer ({type(exc).__name__}): run `livectx stack up` "
                "or set LIVECTX_SCHEMA_REGISTRY_URL"
            ) from None


def _schema(schema_type: str, schema_str: str) -> Any:
    from confluent_kafka.schema_registry import Schema

    return Schema(schema_str, schema_type)


def _quote(subject: str) -> str:
    from urllib.parse import quote

    return quote(subject, safe="")
