"""``livectx schemas plan | apply | check | list | show``: the sources' schemas as code."""

from __future__ import annotations

from typing import Any

import click

from livectx.cli.common import print_table, settings_from, styled

_COLOUR = {
    "new": "cyan",
    "unchanged": "green",
    "new version": "cyan",
    "registered": "green",
    "INCOMPATIBLE": "red",
    "refused": "red",
}


@click.group()
def schemas() -> None:
    """Each source's schema under its registry subject (<topic>-value): planned, checked, applied.

    Registration happens only through `schemas apply`; producers never register. Besides the repo's
    sources, the platform's decisions topic has its subject (livectx.decisions-value)."""


@schemas.command()
@click.pass_context
def plan(ctx: click.Context) -> None:
    """What `schemas apply` would do per subject: new, unchanged, new version or INCOMPATIBLE (with why)."""
    from livectx.schemas.plan import plan as run_plan
    from livectx.schemas.plan import problems_of

    changes = run_plan(_registry(ctx), _declared(ctx))
    _print_changes("schemas plan", changes)
    _print_problems(problems_of(changes))


@schemas.command()
@click.pass_context
def apply(ctx: click.Context) -> None:
    """Set each subject's compatibility level and register new versions; refuse incompatible changes.

    Exit code 1 if any subject was refused (nothing of it is registered)."""
    from livectx.schemas.plan import REFUSED, problems_of
    from livectx.schemas.plan import apply as run_apply

    changes = run_apply(_registry(ctx), _declared(ctx))
    _print_changes("schemas applied", changes)
    _print_problems(problems_of(changes))
    if any(c.action == REFUSED for c in changes):
        ctx.exit(1)


@schemas.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Exit 1 on any incompatible change, one line per problem naming the subject and the field (for CI)."""
    from livectx.schemas.plan import plan as run_plan
    from livectx.schemas.plan import problems_of

    changes = run_plan(_registry(ctx), _declared(ctx))
    problems = problems_of(changes)
    if problems:
        _print_problems(problems)
        ctx.exit(1)
    click.echo(f"{len(changes)} subject(s) checked: every declared schema is compatible with the registry")


@schemas.command(name="list")
@click.pass_context
def list_schemas(ctx: click.Context) -> None:
    """The declared subjects, their schema type and compatibility level, and how livectx's producers write
    the records (``plain``, or ``confluent``: the wire format through the registry). No registry needed."""
    print_table(
        "declared schemas",
        ["subject", "source", "type", "compatibility", "producers write"],
        [(d.subject, d.source, d.schema_type, d.compatibility, d.wire) for d in _declared(ctx)],
    )


@schemas.command()
@click.argument("source")
@click.pass_context
def show(ctx: click.Context, source: str) -> None:
    """Print the schema SOURCE registers (Avro as declared, JSON Schema derived from its columns)."""
    from livectx.repo import current_repo
    from livectx.schemas.derive import declared_schema
    from livectx.schemas.plan import schema_json
    from livectx.schemas.platform import platform_schemas

    settings = settings_from(ctx)
    platform = {d.source: d for _model, d in platform_schemas(settings)}
    declared = platform.get(source) or declared_schema(current_repo(settings).source(source))
    click.echo(schema_json(declared))


def _declared(ctx: click.Context) -> list[Any]:
    from livectx.repo import current_repo
    from livectx.schemas.derive import declared_schemas
    from livectx.schemas.platform import platform_schemas

    settings = settings_from(ctx)
    return [*declared_schemas(current_repo(settings).sources), *(d for _model, d in platform_schemas(settings))]


def _registry(ctx: click.Context) -> Any:
    from livectx.schemas.client import ConfluentRegistry

    return ConfluentRegistry(settings_from(ctx))


def _print_changes(title: str, changes: list[Any]) -> None:
    print_table(
        title,
        ["subject", "source", "action", "compatibility", "detail"],
        [
            (c.subject, c.source, styled(c.action, _COLOUR.get(c.action, "")), c.compatibility, c.detail)
            for c in changes
        ],
    )


def _print_problems(problems: list[str]) -> None:
    for line in problems:
        click.secho(line, fg="red", err=True)
