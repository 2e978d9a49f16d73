"""``livectx cdc plan | apply | status | drop``: capture the repo's declared tables (``cdc_source``)."""

from __future__ import annotations

import json

import click

from livectx.cli.common import print_table, settings_from, styled

SOURCES = click.argument("sources", nargs=-1)


@click.group()
def cdc() -> None:
    """Change data capture: Debezium connectors on Kafka Connect for the repo's cdc_source tables."""


def _tables(ctx: click.Context, sources: tuple[str, ...]):  # type: ignore[no-untyped-def]
    from livectx.cdc.manage import declared_tables

    settings = settings_from(ctx)
    tables = declared_tables(settings, sources)
    if not tables:
        raise click.ClickException("the feature repo declares no cdc_source: nothing to capture")
    return settings, tables


@cdc.command()
@SOURCES
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (the connector configs too).")
@click.pass_context
def plan(ctx: click.Context, sources: tuple[str, ...], as_json: bool) -> None:
    """What `cdc apply` would change, per declared table (SOURCES: only these). Changes nothing."""
    from livectx.cdc.manage import plan as make_plan
    from livectx.cdc.manage import plan_as_dict

    settings, tables = _tables(ctx, sources)
    plans = make_plan(settings, tables)
    if as_json:
        click.echo(json.dumps(plan_as_dict(plans, settings), indent=2))
        return
    for entry in plans:
        click.echo(f"{entry.table.source} ({entry.table.database}.{entry.table.qualified} -> {entry.table.topic}):")
        for action in entry.actions or ["up to date"]:
            click.echo(f"  {action}")


@cdc.command()
@SOURCES
@click.option("--timeout", "timeout_s", type=float, default=60.0, show_default=True, help="Seconds to wait for tasks.")
@click.pass_context
def apply(ctx: click.Context, sources: tuple[str, ...], timeout_s: float) -> None:
    """Create or update each table's publication, slot and connector; wait until its task runs."""
    from livectx.cdc.manage import apply as do_apply

    settings, tables = _tables(ctx, sources)
    for line in do_apply(settings, tables, timeout_s) or ["up to date"]:
        click.echo(line)


@cdc.command()
@SOURCES
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def status(ctx: click.Context, sources: tuple[str, ...], as_json: bool) -> None:
    """Connector and task state, the slot's retained WAL, the age of the newest change. Exit 1 unless running."""
    from livectx.cdc.manage import status as get_status

    settings, tables = _tables(ctx, sources)
    rows = get_status(settings, tables)
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in rows], indent=2))
    else:
        colour = {"RUNNING": "green", "PAUSED": "yellow", "STOPPED": "yellow"}
        print_table(
            "livectx cdc",
            ["source", "connector", "state", "tasks", "slot", "retained WAL (bytes)", "newest change"],
            [
                (
                    r.source,
                    r.connector,
                    styled(r.connector_state, colour.get(r.connector_state, "red")),
                    ", ".join(r.task_states) or "-",
                    "-" if r.slot_active is None else ("active" if r.slot_active else "inactive"),
                    "-" if r.retained_wal_bytes is None else f"{r.retained_wal_bytes:,}",
                    "-" if r.newest_change_age_s is None else f"{r.newest_change_age_s:,.1f} s ago",
                )
                for r in rows
            ],
        )
    for row in rows:
        if row.warning:
            click.secho(f"warning: {row.warning}", fg="yellow", err=True)
    if not all(r.connector_state == "RUNNING" and r.task_states and set(r.task_states) == {"RUNNING"} for r in rows):
        ctx.exit(1)


@cdc.command()
@SOURCES
@click.pass_context
def drop(ctx: click.Context, sources: tuple[str, ...]) -> None:
    """Remove each table's connector (and its stored offsets), replication slot and publication."""
    from livectx.cdc.manage import drop as do_drop

    settings, tables = _tables(ctx, sources)
    for line in do_drop(settings, tables) or ["nothing to drop"]:
        click.echo(line)


@cdc.command()
@click.argument("file", required=False, type=click.File("r"))
@click.option("-c", "--command", "statement", default=None, help="SQL to run instead of FILE.")
@click.option("--database", default="livectx_app", show_default=True, help="The database to run it in.")
@click.pass_context
def sql(ctx: click.Context, file: click.File | None, statement: str | None, database: str) -> None:
    """Run SQL (FILE or -c) in an application database, e.g. to create the tables a cdc_source captures."""
    from livectx.cdc.database import run_sql

    text = statement if statement is not None else (file.read() if file is not None else None)  # type: ignore[attr-defined]
    if not text:
        raise click.UsageError("give a FILE or -c STATEMENT")
    for line in run_sql(settings_from(ctx), database, text):
        click.echo(line)
