"""``livectx tenants plan | apply | list``: the declared tenants made true on the broker, idempotently.

Like ``livectx topics apply``: read the live state, compute what differs from the declarations, change
only that. Per tenant principal:

- a SCRAM-SHA-512 user (AdminClient ``alter_user_scram_credentials``). Its password is generated on
  first apply into ``<secrets dir>/<principal>.password`` (0600) and given to the tenant from there;
  it is never printed. A user that exists is left alone (its password cannot be read back);
- ALLOW ACLs on its own prefixes only: topics (read, write, describe, describe-configs), consumer
  groups (read, describe), transactional ids (write, describe). Anything else the principal was
  granted by hand is drift and is deleted; a declared ACL removed by hand comes back;
- its quotas (:mod:`livectx.quotas`, Kafka's user quotas).

Principals no tenant declares (the platform's own) are never touched.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from livectx.errors import LivectxError
from livectx.repo.tenants import TenantSpec

SCRAM_ITERATIONS = 8192
_TOPIC_OPS = ("READ", "WRITE", "DESCRIBE", "DESCRIBE_CONFIGS")
_GROUP_OPS = ("READ", "DESCRIBE")
_TXN_OPS = ("WRITE", "DESCRIBE")


@dataclass(frozen=True, order=True)
class Acl:
    """One ALLOW binding, comparable with what ``describe_acls`` returns."""

    principal: str  # "User:name"
    resource: str  # TOPIC | GROUP | TRANSACTIONAL_ID | ...
    name: str
    pattern: str  # PREFIXED | LITERAL
    operation: str
    permission: str = "ALLOW"
    host: str = "*"

    def __str__(self) -> str:
        how = "prefix" if self.pattern == "PREFIXED" else "literal"
        return f"{self.permission} {self.operation} on {self.resource} {how} {self.name!r}"


@dataclass(frozen=True)
class Change:
    tenant: str
    kind: str  # user | acl | quota
    action: str  # create | delete | set | unchanged
    detail: str


def desired_acls(tenant: TenantSpec) -> set[Acl]:
    """Every ACL the tenant's principals should have: their own prefixes, nothing else."""
    acls = set()
    for principal in tenant.principals:
        who = f"User:{principal}"
        for resource, name, ops in (
            ("TOPIC", tenant.topic_prefix, _TOPIC_OPS),
            ("GROUP", tenant.group_prefix, _GROUP_OPS),
            ("TRANSACTIONAL_ID", tenant.transactional_id_prefix, _TXN_OPS),
        ):
            acls.update(Acl(who, resource, name, "PREFIXED", op) for op in ops)
    return acls


def live_acls(admin: Any, principals: Iterable[str]) -> set[Acl]:
    """The ACLs bound to ``principals`` on the broker now."""
    from confluent_kafka.admin import AclBindingFilter, AclOperation, AclPermissionType, ResourcePatternType
    from confluent_kafka.admin import ResourceType as RT

    wanted = {f"User:{p}" for p in principals}
    query = AclBindingFilter(RT.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY, AclPermissionType.ANY)
    bindings = _result(admin.describe_acls(query, request_timeout=15), "describing ACLs")
    return {
        Acl(b.principal, b.restype.name, b.name, b.resource_pattern_type.name, b.operation.name,
            b.permission_type.name, b.host)
        for b in bindings
        if b.principal in wanted
    }  # fmt: skip


def live_users(admin: Any) -> set[str]:
    """The SCRAM users the broker knows."""
    described = _result(admin.describe_user_scram_credentials(request_timeout=15), "describing SCRAM users")
    return set(described)


def plan(admin: Any, tenants: Iterable[TenantSpec], secrets_dir: Path) -> list[Change]:
    """What ``apply`` would change (users and ACLs; quotas come from :mod:`livectx.quotas`)."""
    tenants = list(tenants)
    users = live_users(admin)
    everyone = [p for t in tenants for p in t.principals]
    have = live_acls(admin, everyone)
    changes = []
    for tenant in tenants:
        for principal in tenant.principals:
            if principal in users:
                changes.append(Change(tenant.name, "user", "unchanged", f"{principal} (SCRAM-SHA-512)"))
            else:
                where = secrets_dir / f"{principal}.password"
                changes.append(Change(tenant.name, "user", "create", f"{principal} (password in {where})"))
        want = desired_acls(tenant)
        mine = {a for a in have if a.principal[5:] in tenant.principals}
        changes += [Change(tenant.name, "acl", "create", f"{a.principal} {a}") for a in sorted(want - mine)]
        changes += [Change(tenant.name, "acl", "delete", f"{a.principal} {a}") for a in sorted(mine - want)]
        if not want - mine and not mine - want:
            changes.append(Change(tenant.name, "acl", "unchanged", f"{len(want)} ACLs"))
    return changes


def apply(admin: Any, tenants: Iterable[TenantSpec], secrets_dir: Path) -> list[Change]:
    """Make the broker match the declarations (users and ACLs); returns what was done."""
    tenants = list(tenants)
    changes = plan(admin, tenants, secrets_dir)
    existing = live_users(admin)
    missing = [p for t in tenants for p in t.principals if p not in existing]
    if missing:
        _create_users(admin, missing, secrets_dir)
    everyone = [p for t in tenants for p in t.principals]
    have = live_acls(admin, everyone)
    want = set().union(*(desired_acls(t) for t in tenants)) if tenants else set()
    if want - have:
        _create_acls(admin, sorted(want - have))
    if have - want:
        _delete_acls(admin, sorted(have - want))
    return changes


def principal_password(secrets_dir: Path, principal: str) -> str:
    """The principal's password, generated once into ``<secrets dir>/<principal>.password`` (0600)."""
    path = secrets_dir / f"{principal}.password"
    if not path.is_file():
        secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def _create_users(admin: Any, principals: list[str], secrets_dir: Path) -> None:
    from confluent_kafka.admin import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
    upserts = [UserScramCredentialUpsertion(p, info, principal_password(secrets_dir, p).encode()) for p in principals]
    for user, future in admin.alter_user_scram_credentials(upserts, request_timeout=15).items():
        _result(future, f"creating SCRAM user {user}")


def _binding(acl: Acl, kind: Any = None) -> Any:
    """``acl`` as an ``AclBinding`` (to create), or as the exact ``AclBindingFilter`` matching it (to delete)."""
    from confluent_kafka.admin import AclBinding, AclOperation, AclPermissionType, ResourcePatternType, ResourceType

    return (kind or AclBinding)(
        ResourceType[acl.resource], acl.name, ResourcePatternType[acl.pattern], acl.principal, acl.host,
        AclOperation[acl.operation], AclPermissionType[acl.permission],
    )  # fmt: skip


def _create_acls(admin: Any, acls: list[Acl]) -> None:
    for binding, future in admin.create_acls([_binding(a) for a in acls], request_timeout=15).items():
        _result(future, f"creating ACL {binding}")


def _delete_acls(admin: Any, acls: list[Acl]) -> None:
    from confluent_kafka.admin import AclBindingFilter

    filters = [_binding(a, AclBindingFilter) for a in acls]
    for binding, future in admin.delete_acls(filters, request_timeout=15).items():
        _result(future, f"deleting ACL {binding}")


def _result(future: Any, what: str) -> Any:
    """The future's result, or one readable line (e.g. the credentials lack the super-user's rights)."""
    from confluent_kafka import KafkaException

    try:
        return future.result()
    except KafkaException as exc:
        error = exc.args[0] if exc.args else exc
        text = error.str() if hasattr(error, "str") else str(error)
        raise LivectxError(f"{what} failed: {text}") from None
