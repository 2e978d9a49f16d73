"""``livectx topics apply | list``."""

from __future__ import annotations

import click

from livectx.cli.common import print_table, settings_from


@click.group()
def topics() -> None:
    """The platform's and the feature repo's topics as code (partitions, cleanup policy, retention)."""


@topics.command()
@click.option("--dry-run", is_flag=True, help="Show what would change without changing it.")
@click.pass_context
def apply(ctx: click.Context, dry_run: bool) -> None:
    """Create missing topics, add partitions and fix config drift. Idempotent. New topics get
    LIVECTX_KAFKA_REPLICATION_FACTOR replicas (default: the broker's), every topic LIVECTX_KAFKA_MIN_INSYNC_REPLICAS
    when set."""
    from livectx import topics as topic_specs
    from livectx.kafka import admin_client, require_reachable
    from livectx.repo import current_repo

    settings = settings_from(ctx)
    declared = topic_specs.declared_topics(current_repo(settings))
    require_reachable(settings)
    admin = admin_client(settings)
    replication = topic_specs.Replication.from_settings(settings)
    if dry_run:
        changes = topic_specs.plan(admin, declared, replication)
    else:
        changes = topic_specs.apply(admin, declared, replication=replication)
    title = "topics plan (dry run)" if dry_run else "topics applied"
    print_table(title, ["topic", "action", "detail"], [(c.topic, c.action, c.detail) for c in changes])


@topics.command(name="list")
@click.pass_context
def list_topics(ctx: click.Context) -> None:
    """The declared topics and their settings (no broker needed)."""
    from livectx.repo import current_repo
    from livectx.topics import declared_topics

    print_table(
        "declared topics",
        ["topic", "partitions", "config", "purpose"],
        [
            (t.name, t.partitions, ", ".join(f"{k}={v}" for k, v in t.config.items()), t.purpose)
            for t in declared_topics(current_repo(settings_from(ctx)))
        ],
    )
