"""Tenants as code: who may use which slice of the shared platform, declared in the feature repo.

Feast has no tenant object, so a tenant is a plain livectx declaration (like ``@generator``): a
``tenant(...)`` call at module level of any ``.py`` file of the repo (by convention ``tenants.py``). Feast's
``parse_repo`` ignores it; livectx's loader collects it. Keeping tenants in the repo, next to the topics
and views they are granted, means one review covers "a new source" and "who may read it", and
``livectx tenants plan`` shows the broker-side change before ``apply`` makes it.

A tenant owns everything under its prefixes: topics and transactional ids under ``topic_prefix``,
consumer groups under ``group_prefix``. Its principals are Kafka SCRAM users (and the principals its API
keys authenticate as); its Feast project and vector namespace scope what the context servers return to
it. Quotas bound what its principals may take from the broker (Kafka's user quotas).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from livectx.errors import LivectxError

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_PRINCIPAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")


class TenantError(LivectxError):
    """A tenant declaration that cannot isolate anyone (bad name, overlapping prefixes, shared principal)."""


@dataclass(frozen=True)
class Quota:
    """Kafka user quotas of each of a tenant's principals. ``None`` leaves the broker's default (unlimited).

    Byte rates are bytes per second per broker; ``request_percentage`` is the share of one request
    handler and network thread's time (100 = one whole thread), Kafka's ``request_percentage``.
    """

    producer_byte_rate: int | None = None
    consumer_byte_rate: int | None = None
    request_percentage: float | None = None

    def as_configs(self) -> dict[str, float]:
        """The declared quotas as Kafka's config names (only those set)."""
        values = {
            "producer_byte_rate": self.producer_byte_rate,
            "consumer_byte_rate": self.consumer_byte_rate,
            "request_percentage": self.request_percentage,
        }
        return {k: float(v) for k, v in values.items() if v is not None}


@dataclass(frozen=True)
class TenantSpec:
    """One tenant, as ``livectx tenants`` and the context servers read it."""

    name: str
    principals: tuple[str, ...]
    topic_prefix: str
    group_prefix: str
    transactional_id_prefix: str
    feast_project: str
    vector_namespace: str
    quota: Quota = field(default_factory=Quota)
    description: str = ""


def tenant(
    name: str,
    *,
    principals: list[str] | tuple[str, ...],
    topic_prefix: str,
    feast_project: str,
    group_prefix: str | None = None,
    transactional_id_prefix: str | None = None,
    vector_namespace: str | None = None,
    producer_byte_rate: int | None = None,
    consumer_byte_rate: int | None = None,
    request_percentage: float | None = None,
    description: str = "",
) -> TenantSpec:
    """Declare a tenant; assign it to a module-level name of a repo file (``acme = tenant("acme", ...)``).

    Args:
        name: the tenant's id (lower case), also the vector namespace unless ``vector_namespace`` is given.
        principals: Kafka SCRAM user names of the tenant (at least one).
        topic_prefix: the tenant's topics start with it (e.g. ``"acme."``).
        feast_project: the Feast project whose features the tenant may read.
        group_prefix / transactional_id_prefix: default to ``topic_prefix``.
        vector_namespace: the value of the memory views' tenant field for this tenant's items.
        producer_byte_rate / consumer_byte_rate / request_percentage: Kafka user quotas per principal.

    Raises:
        TenantError: a bad name, principal, prefix or quota (one line, naming the tenant).
    """
    if not _NAME.match(name):
        raise TenantError(f"tenant {name!r}: a name is lower case letters, digits, '-' or '_' (max 63)")
    if not principals:
        raise TenantError(f"tenant {name}: declare at least one principal")
    for principal in principals:
        if not _PRINCIPAL.match(principal):
            raise TenantError(f"tenant {name}: principal {principal!r} is not a valid SCRAM user name")
    prefixes = {
        "topic_prefix": topic_prefix,
        "group_prefix": group_prefix or topic_prefix,
        "transactional_id_prefix": transactional_id_prefix or topic_prefix,
    }
    for what, prefix in prefixes.items():
        if not _PREFIX.match(prefix):
            raise TenantError(f"tenant {name}: {what} {prefix!r} is not a Kafka resource name prefix")
    for what, value in (("producer_byte_rate", producer_byte_rate), ("consumer_byte_rate", consumer_byte_rate)):
        if value is not None and value < 1:
            raise TenantError(f"tenant {name}: {what} must be at least 1 byte/s")
    if request_percentage is not None and not 0 < request_percentage <= 10_000:
        raise TenantError(f"tenant {name}: request_percentage must be in (0, 10000]")
    return TenantSpec(
        name=name,
        principals=tuple(principals),
        topic_prefix=prefixes["topic_prefix"],
        group_prefix=prefixes["group_prefix"],
        transactional_id_prefix=prefixes["transactional_id_prefix"],
        feast_project=feast_project,
        vector_namespace=vector_namespace or name,
        quota=Quota(producer_byte_rate, consumer_byte_rate, request_percentage),
        description=description,
    )


def collect_tenants(modules: list[Any]) -> dict[str, TenantSpec]:
    """The tenants declared at module level of ``modules``, checked against each other.

    Raises:
        TenantError: two tenants share a name, a principal, or prefixes one of which contains the other
            (then one tenant's ACLs would cover the other's resources).
    """
    found: dict[str, TenantSpec] = {}
    for module in modules:
        for value in vars(module).values():
            if isinstance(value, TenantSpec):
                if value.name in found and found[value.name] != value:
                    raise TenantError(f"two tenants are named {value.name!r}")
                found[value.name] = value
    check_isolation(list(found.values()))
    return found


def check_isolation(tenants: list[TenantSpec]) -> None:
    """Refuse declarations under which one tenant could reach another's resources or credentials."""
    owners: dict[str, str] = {}
    for spec in tenants:
        for principal in spec.principals:
            if owners.setdefault(principal, spec.name) != spec.name:
                raise TenantError(f"principal {principal} is declared by tenants {owners[principal]} and {spec.name}")
    for i, a in enumerate(tenants):
        for b in tenants[i + 1 :]:
            for what in ("topic_prefix", "group_prefix", "transactional_id_prefix"):
                pa, pb = getattr(a, what), getattr(b, what)
                if pa.startswith(pb) or pb.startswith(pa):
                    raise TenantError(
                        f"tenants {a.name} and {b.name}: {what} {pa!r} and {pb!r} overlap "
                        "(one's ACLs would cover the other's resources)"
                    )
            if a.vector_namespace == b.vector_namespace:
                raise TenantError(f"tenants {a.name} and {b.name} share the vector namespace {a.vector_namespace!r}")
