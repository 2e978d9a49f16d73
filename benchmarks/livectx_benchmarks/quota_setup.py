"""The stage of ``livectx bench quota``: a secured stack, and the research tenant on it.

Kafka's quotas are per user principal, so the research team needs a principal of its own, which only the
secured stack (SASL_SSL, SCRAM users) gives it; the platform's own workers run as its super-user. The
tenant is declared with :func:`livectx.repo.tenants.tenant` and applied the way ``livectx tenants apply``
applies it (:func:`livectx.tenancy.apply` for the SCRAM user and ACLs, :class:`livectx.quotas.QuotaTool`
for the quota), so the bench measures the product's own quota path, not a hand-made broker setting.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from livectx import quotas, tenancy
from livectx.errors import LivectxError
from livectx.kafka import admin_client
from livectx.repo.tenants import Quota, TenantSpec, tenant
from livectx.settings import Settings, get_settings
from livectx.stack.manager import Stack

#: The platform's workers need the broker and the online store only (no Postgres, no registry).
SERVICES = ["kafka", "redis"]
RESEARCH_PRINCIPAL = "research-replay"
#: Settings that would point the clients away from the private stack while it runs.
_AWAY = ("LIVECTX_KAFKA_BOOTSTRAP_SERVERS", "LIVECTX_KAFKA_CLIENT_OPTIONS", "LIVECTX_KAFKA_SASL_PASSWORD",
         "LIVECTX_REDIS_URL")  # fmt: skip


def research_tenant(consumer_byte_rate: int) -> TenantSpec:
    """The research team: its own principal, prefixes and a consumer byte-rate quota."""
    return tenant(
        "research",
        principals=[RESEARCH_PRINCIPAL],
        topic_prefix="research.",
        feast_project="research",
        consumer_byte_rate=consumer_byte_rate,
        description="replays the payments history for analysis; must not slow the live decisions",
    )


def secrets_dir(settings: Settings) -> Path:
    """Where ``tenants apply`` keeps the tenants' passwords (as ``livectx tenants`` does)."""
    return settings.stack.state_dir / "secure" / "principals"


def apply_tenant(settings: Settings, spec: TenantSpec) -> None:
    """``tenants apply`` for ``spec`` without its quota: the SCRAM user and ACLs, and no quota (one left by
    an earlier run is removed), so the replay starts unthrottled."""
    tenancy.apply(admin_client(settings), [spec], secrets_dir(settings))
    apply_quota(settings, dataclasses.replace(spec, quota=Quota()))


def apply_quota(settings: Settings, spec: TenantSpec) -> dict[str, float]:
    """The quota half of ``tenants apply`` (:class:`~livectx.quotas.QuotaTool`, as the command runs it):
    the declared quotas on each principal; returns the first principal's quotas as the broker reports
    them afterwards. The ACL half is left out on purpose: it would delete :func:`grant_read`'s grant."""
    tool = quotas.QuotaTool(settings)
    for _tenant, principal, want, have in quotas.quota_changes([spec], tool.describe()):
        tool.alter(principal, want, have)
    return tool.describe().get(spec.principals[0], {})


def grant_read(settings: Settings, principal: str, topic: str) -> None:
    """READ and DESCRIBE on one platform topic for ``principal``: the research team is granted the
    payments log it replays. Tenant declarations own prefixes only, so this grant is the bench's own
    (``tenants apply`` would delete it as drift)."""
    from confluent_kafka.admin import AclBinding, AclOperation, AclPermissionType, ResourcePatternType, ResourceType

    bindings = [
        AclBinding(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, f"User:{principal}", "*", op,
                   AclPermissionType.ALLOW)
        for op in (AclOperation.READ, AclOperation.DESCRIBE)
    ]  # fmt: skip
    admin = admin_client(settings)  # held while its futures run: a collected client never completes them
    for binding, future in admin.create_acls(bindings, request_timeout=15).items():
        try:
            future.result()
        except Exception as exc:  # one readable line, whatever the client raised
            raise LivectxError(f"granting {binding.operation.name} on {topic} to {principal} failed: {exc}") from None


def research_credentials(settings: Settings) -> dict[str, str]:
    """librdkafka overrides that make a client of the secured stack authenticate as the research team."""
    password = tenancy.principal_password(secrets_dir(settings), RESEARCH_PRINCIPAL)
    return {"sasl.username": RESEARCH_PRINCIPAL, "sasl.password": password}


@contextmanager
def secured_stack(settings: Settings) -> Iterator[tuple[Settings, str]]:
    """The stack to measure on, and a line saying which.

    With ``LIVECTX_STACK_SECURE=1`` the configured secured stack: its Kafka and Redis are started if they
    are down, and what was started here is stopped afterwards. Otherwise a private secured stack in a
    temporary state dir on free ports, set in this process's environment for the run (the bench's
    worker processes inherit it), stopped and removed afterwards.
    """
    if settings.stack.secure:
        if settings.external_services:
            raise LivectxError(
                "bench quota runs on the secured local stack (it creates a tenant as its super-user): "
                "unset LIVECTX_KAFKA_BOOTSTRAP_SERVERS and LIVECTX_REDIS_URL"
            )
        stack = Stack(settings)
        started = [name for name, action in stack.up(SERVICES) if action == "started"]
        try:
            yield settings, f"the secured stack in {settings.stack.state_dir}"
        finally:
            if started:
                stack.down(started)
        return
    root = Path(tempfile.mkdtemp(prefix="livectx-bench-quota-"))
    env = {
        "LIVECTX_STACK_SECURE": "1",
        "LIVECTX_STACK_STATE_DIR": str(root / "stack"),
        "LIVECTX_STACK_KAFKA_PORT": str(_free_port()),
        "LIVECTX_STACK_KAFKA_CONTROLLER_PORT": str(_free_port()),
        "LIVECTX_STACK_REDIS_PORT": str(_free_port()),
    }
    saved = {name: os.environ.get(name) for name in (*env, *_AWAY)}
    os.environ.update(env)
    for name in _AWAY:
        os.environ.pop(name, None)
    try:
        private = get_settings(settings.config_file, reload=True)
        stack = Stack(private)
        try:
            stack.up(SERVICES)
            yield private, f"a private secured stack (Kafka on {private.kafka_bootstrap}, stopped afterwards)"
        finally:
            stack.down(SERVICES)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        get_settings(settings.config_file, reload=True)
        shutil.rmtree(root, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
