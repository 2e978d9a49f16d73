"""``livectx init DIR`` and ``livectx plan``: start a feature repo, and see what an edit of one changes."""

from __future__ import annotations

from pathlib import Path

import click

from livectx.cli.common import print_table, settings_from


@click.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--project", default=None, help="Feast project name [default: the folder's name].")
@click.option(
    "--wire",
    type=click.Choice(["plain", "confluent"]),
    default="plain",
    show_default=True,
    help="How livectx's producers write the source: plain Avro, or the Confluent wire format via the registry.",
)
def init(folder: Path, project: str | None, wire: str) -> None:
    """Scaffold a working feature repo in FOLDER: a source with its schema, a stream view, a memory view
    and a generator of synthetic events (like `feast init`)."""
    from livectx.repo.scaffold import scaffold

    written = scaffold(folder, project, wire)
    click.echo(f"created {folder} ({', '.join(p.name for p in written)}). Next:")
    repo = f"livectx --repo {folder}"
    for step in (
        f"{repo} feast apply",
        f"{repo} topics apply",
        *([f"{repo} schemas apply"] if wire == "confluent" else []),
        f"{repo} produce --generator messages --count 1000",
        f"{repo} ingest run features --until-caught-up",
        f"{repo} ingest run embeddings --until-caught-up",
        f"{repo} features get c00001 --service customer_features",
    ):
        click.echo(f"  {step}")


@click.command()
@click.option("--group", "consumer_group", default="livectx-features", show_default=True, help="Engine group.")
@click.pass_context
def plan(ctx: click.Context, consumer_group: str) -> None:
    """What the repo declares against what runs: topics to change, and which views' window state must be
    rebuilt (their window, aggregations or source schema changed since the engine built it)."""
    from livectx.errors import NotReachableError
    from livectx.repo import current_repo
    from livectx.repo.changes import view_changes

    settings = settings_from(ctx)
    repo = current_repo(settings)
    print_table(
        f"sources of {repo.path}",
        ["source", "topic", "format", "key", "columns"],
        [(s.name, s.topic, s.wire_format, s.key_field, len(s.model.declared_columns)) for s in repo.sources.values()],  # type: ignore[attr-defined]
    )
    try:
        from livectx import topics
        from livectx.kafka import admin_client, require_reachable

        require_reachable(settings)
        changes = topics.plan(admin_client(settings), topics.declared_topics(repo))
        print_table("topics", ["topic", "action", "detail"], [(c.topic, c.action, c.detail) for c in changes])
    except NotReachableError as exc:
        click.secho(f"topics: not compared ({exc})", fg="yellow", err=True)
    from livectx.redis_client import redis_client

    try:
        rows = view_changes(redis_client(settings), consumer_group, repo.groups)
    except Exception as exc:  # Redis down: the declarations were still checked
        click.secho(f"views: not compared (Redis: {type(exc).__name__}: {exc})", fg="yellow", err=True)
        return
    print_table(
        f"stream views (engine group {consumer_group})",
        ["view", "state", "detail"],
        [(r.view, r.action, r.detail) for r in rows],
    )
