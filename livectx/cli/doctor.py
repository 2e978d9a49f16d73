"""``livectx doctor``."""

from __future__ import annotations

import click

from livectx.cli.common import print_table, settings_from, styled


@click.command()
@click.pass_context
def doctor(ctx: click.Context) -> None:
    """Check prerequisites (Java 17 for Kafka, Java 21+ for the schema registry, Maven, redis-server), ports,
    folders and the embedding model.

    Prints a fix for each problem; exits 1 if anything would stop `livectx stack up` from working.
    """
    from livectx.doctor import run_checks

    checks = run_checks(settings_from(ctx))
    colour = {"ok": "green", "warn": "yellow", "fail": "red"}
    print_table(
        "livectx doctor",
        ["check", "status", "detail", "fix"],
        [(c.name, styled(c.status, colour[c.status]), c.detail, c.fix) for c in checks],
    )
    if any(c.status == "fail" for c in checks):
        ctx.exit(1)
