"""Who is calling, and what they may see: the servers' authentication and tenant scoping.

Every server of the product (``livectx serve``, ``livectx mcp --transport http``) resolves a caller from
its credential alone: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``, an API key of
:mod:`livectx.auth` bound to one tenant of the repo. The tenant is never taken from the request: a
filter naming another tenant's namespace, or a feature read outside the tenant's Feast project, is
refused with one fixed message that says nothing about the other tenant (not even whether it exists).
Vector searches always carry the caller's namespace, so an unfiltered search is scoped too.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from livectx.auth import ApiKeyStore
from livectx.errors import LivectxError
from livectx.repo.tenants import TenantSpec
from livectx.settings import Settings
from livectx.vectors.records import VectorFilter

FORBIDDEN = "forbidden: outside this credential's tenant"


class Unauthenticated(LivectxError):
    """No credential, or one that is malformed, unknown, revoked or bound to an undeclared tenant (401)."""


class Forbidden(LivectxError):
    """The request reaches outside the caller's tenant (403, message :data:`FORBIDDEN`)."""


class TenantAuth:
    """Resolve credentials to tenants and scope requests to them."""

    def __init__(self, keys: ApiKeyStore, tenants: Mapping[str, TenantSpec], project: str) -> None:
        self._keys = keys
        self._tenants = dict(tenants)
        self.project = project

    @classmethod
    def from_settings(cls, settings: Settings) -> TenantAuth:
        from livectx.redis_client import redis_client
        from livectx.repo import current_repo

        repo = current_repo(settings)
        if not repo.tenants:
            raise LivectxError(
                f"authentication is on but the repo {repo.path} declares no tenant: declare one with "
                "livectx.repo.tenants.tenant(...), or set LIVECTX_AUTH_MODE=off on a loopback-only dev server"
            )
        return cls(ApiKeyStore(redis_client(settings)), repo.tenants, repo.project)

    def caller(self, headers: Mapping[str, str]) -> TenantSpec:
        """The caller's tenant, from its credential.

        Raises:
            Unauthenticated: no usable credential.
        """
        token = token_from(headers)
        if token is None:
            raise Unauthenticated("authentication required: send Authorization: Bearer <API key>")
        tenant = self._keys.authenticate(token)
        if tenant is None or tenant not in self._tenants:
            raise Unauthenticated("invalid API key")
        return self._tenants[tenant]

    def scope(
        self, tenant: TenantSpec, where: VectorFilter | None, entities: list[str] | tuple[str, ...]
    ) -> VectorFilter:
        """The vector filter narrowed to ``tenant``'s namespace, after checking the request stays inside it.

        Raises:
            Forbidden: a filter for another namespace, or entities to read outside the tenant's project.
        """
        if entities and tenant.feast_project != self.project:
            raise Forbidden(FORBIDDEN)
        if where is None:
            return VectorFilter(tenant=tenant.vector_namespace)
        if where.tenant is not None and where.tenant != tenant.vector_namespace:
            raise Forbidden(FORBIDDEN)
        return replace(where, tenant=tenant.vector_namespace)


def token_from(headers: Mapping[str, str]) -> str | None:
    """The API key in ``Authorization: Bearer`` or ``X-API-Key`` (header names case-insensitive)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    bearer = lowered.get("authorization", "")
    if bearer[:7].lower() == "bearer " and bearer[7:].strip():
        return bearer[7:].strip()
    key = lowered.get("x-api-key", "").strip()
    return key or None


def auth_required(settings: Settings, host: str) -> bool:
    """Whether a server on ``host`` must authenticate: ``LIVECTX_AUTH_MODE`` ``required`` / ``off``, and under
    the default ``auto``, yes unless it is a loopback-only server on the plain (unsecured) local stack."""
    mode = settings.auth.mode
    if mode != "auto":
        return mode == "required"
    return settings.stack.secure or not _loopback(host)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def describe(tenant: TenantSpec) -> dict[str, Any]:
    """What a caller may learn about its own tenant."""
    return {"tenant": tenant.name, "feast_project": tenant.feast_project, "vector_namespace": tenant.vector_namespace}
