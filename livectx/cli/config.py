"""``livectx config``: the effective settings, secrets masked."""

from __future__ import annotations

import click

from livectx.cli.common import print_table, settings_from


@click.command()
@click.pass_context
def config(ctx: click.Context) -> None:
    """Show the effective settings (environment > config file > defaults), secrets masked."""
    print_table("livectx settings", ["setting", "value"], settings_from(ctx).describe().items())
