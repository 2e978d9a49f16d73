"""``livectx tenants plan | apply | list`` and ``livectx tenants keys create | list | revoke``."""

from __future__ import annotations

import click

from livectx.cli.common import print_table, settings_from


@click.group()
def tenants() -> None:
    """The repo's tenants on the broker (SCRAM users, ACLs, quotas) and their API keys for the servers."""


def _secrets_dir(settings) -> object:  # type: ignore[no-untyped-def]
    return settings.stack.state_dir / "secure" / "principals"


def _changes(ctx: click.Context, execute: bool) -> list[tuple[str, str, str, str]]:
    from livectx import quotas, tenancy
    from livectx.kafka import admin_client, require_reachable
    from livectx.repo import current_repo

    settings = settings_from(ctx)
    declared = list(current_repo(settings).tenants.values())
    if not declared:
        raise click.ClickException("the repo declares no tenant (livectx.repo.tenants.tenant(...))")
    require_reachable(settings)
    admin = admin_client(settings)
    secrets_dir = _secrets_dir(settings)
    run = tenancy.apply if execute else tenancy.plan
    rows = [(c.tenant, c.kind, c.action, c.detail) for c in run(admin, declared, secrets_dir)]
    tool = quotas.QuotaTool(settings)
    differing = quotas.quota_changes(declared, tool.describe())
    for tenant, principal, want, have in differing:
        if execute:
            tool.alter(principal, want, have)
        rows.append((tenant, "quota", "set", f"{principal}: {quotas.describe_change(want, have)}"))
    touched = {t for t, *_ in differing}
    rows += [
        (t.name, "quota", "unchanged", str(t.quota.as_configs() or "none")) for t in declared if t.name not in touched
    ]
    return sorted(rows, key=lambda r: (r[0], ["user", "acl", "quota"].index(r[1])))


@tenants.command()
@click.pass_context
def plan(ctx: click.Context) -> None:
    """What `tenants apply` would change on the broker."""
    print_table("tenants plan", ["tenant", "kind", "action", "detail"], _changes(ctx, execute=False))


@tenants.command()
@click.pass_context
def apply(ctx: click.Context) -> None:
    """Create the tenants' SCRAM users, ACLs and quotas; delete ACLs nobody declared. Idempotent."""
    print_table("tenants applied", ["tenant", "kind", "action", "detail"], _changes(ctx, execute=True))


@tenants.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def list_tenants(ctx: click.Context, as_json: bool) -> None:
    """Each declared tenant's principals with their live state on the broker: SCRAM user, ACLs, quotas."""
    import json

    from livectx import quotas, tenancy
    from livectx.kafka import admin_client, require_reachable
    from livectx.repo import current_repo

    settings = settings_from(ctx)
    declared = list(current_repo(settings).tenants.values())
    require_reachable(settings)
    admin = admin_client(settings)
    users = tenancy.live_users(admin)
    acls = tenancy.live_acls(admin, [p for t in declared for p in t.principals])
    live = quotas.QuotaTool(settings).describe()
    rows = [
        {
            "tenant": t.name,
            "principal": p,
            "scram_user": p in users,
            "topic_prefix": t.topic_prefix,
            "group_prefix": t.group_prefix,
            "acls": sorted(str(a) for a in acls if a.principal == f"User:{p}"),
            "acls_declared": len(tenancy.desired_acls(t)) // len(t.principals),
            "quotas": live.get(p, {}),
            "feast_project": t.feast_project,
            "vector_namespace": t.vector_namespace,
        }
        for t in declared
        for p in t.principals
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    print_table(
        "tenants",
        ["tenant", "principal", "scram user", "prefixes", "acls", "quotas", "project / namespace"],
        [
            (
                r["tenant"], r["principal"], "yes" if r["scram_user"] else "MISSING",
                f"{r['topic_prefix']}* {r['group_prefix']}*", f"{len(r['acls'])}/{r['acls_declared']}",
                quotas.describe_change(r["quotas"], {}) or "none", f"{r['feast_project']} / {r['vector_namespace']}",
            )
            for r in rows
        ],
    )  # fmt: skip


@tenants.group()
def keys() -> None:
    """API keys for `livectx serve` and `livectx mcp --transport http`, each bound to one tenant."""


def _store(ctx: click.Context):  # type: ignore[no-untyped-def]
    from livectx.auth import ApiKeyStore
    from livectx.redis_client import redis_client

    return ApiKeyStore(redis_client(settings_from(ctx)))


@keys.command()
@click.argument("tenant")
@click.pass_context
def create(ctx: click.Context, tenant: str) -> None:
    """Issue a key for TENANT and print it once (only its SHA-256 is stored)."""
    from livectx.repo import current_repo

    current_repo(settings_from(ctx)).tenant(tenant)  # one readable line for an undeclared tenant
    click.echo(_store(ctx).create(tenant))
    click.echo("store it now: it cannot be shown again (`livectx tenants keys revoke ID` removes it)", err=True)


@keys.command(name="list")
@click.option("--tenant", default=None, help="Only this tenant's keys.")
@click.pass_context
def list_keys(ctx: click.Context, tenant: str | None) -> None:
    """Key ids, tenants and creation times (never the keys)."""
    from datetime import UTC, datetime

    rows = [
        (k.key_id, k.tenant, datetime.fromtimestamp(k.created_ms / 1000, UTC).isoformat(timespec="seconds"))
        for k in _store(ctx).list(tenant)
    ]
    print_table("API keys", ["id", "tenant", "created"], rows)


@keys.command()
@click.argument("key_id")
@click.pass_context
def revoke(ctx: click.Context, key_id: str) -> None:
    """Remove a key by its id (the 12 hex characters after `lcx_`)."""
    if not _store(ctx).revoke(key_id):
        raise click.ClickException(f"no API key with id {key_id}")
    click.echo(f"revoked {key_id}")
