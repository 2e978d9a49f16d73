"""``livectx feast ...`` and ``livectx env``: run Feast against the configured stack."""

from __future__ import annotations

import shlex
import subprocess

import click

from livectx.cli.common import settings_from


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("feast_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def feast(ctx: click.Context, feast_args: tuple[str, ...]) -> None:
    """Run the Feast CLI on the feature repo with connection settings filled in, e.g. `livectx feast apply`."""
    from livectx.feast_store import feast_command, feast_env

    settings = settings_from(ctx)
    if feast_args[:1] in (("apply",), ("plan",)):
        from livectx.repo import current_repo

        current_repo(settings)  # livectx's checks first: a view it cannot run fails here, named, in one line
    ctx.exit(subprocess.run(feast_command(settings, *feast_args), env=feast_env(settings), check=False).returncode)


@click.command()
@click.pass_context
def env(ctx: click.Context) -> None:
    """Print `export` lines for the variables feature_store.yaml expands and the schema registry's URL:
    eval "$(livectx env)". Credentials are never printed (they stay in their own variables)."""
    settings = settings_from(ctx)
    values = {**settings.feast_environment(), "LIVECTX_SCHEMA_REGISTRY_URL": settings.schema_registry_url}
    for key, value in values.items():
        click.echo(f"export {key}={shlex.quote(value)}")
