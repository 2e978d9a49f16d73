"""The ``livectx`` command line: one click group of nouns and verbs.

Sub-commands are loaded lazily: the core's own from ``livectx.cli.*`` and the product packages' from the
``livectx.commands`` entry points, so ``livectx --help`` imports neither Feast nor the workers and the
core never imports ``livectx_ingest`` & co. Expected failures (:class:`LivectxError`) print one red line.
"""

from __future__ import annotations

import importlib
import sys
from importlib.metadata import entry_points
from pathlib import Path

import click

from livectx import __version__
from livectx.errors import LivectxError

CORE_COMMANDS = {
    "stack": "livectx.cli.stack:stack",
    "doctor": "livectx.cli.doctor:doctor",
    "topics": "livectx.cli.topics:topics",
    "schemas": "livectx.cli.schemas:schemas",
    "produce": "livectx.cli.produce:produce",
    "feast": "livectx.cli.feast:feast",
    "env": "livectx.cli.feast:env",
    "config": "livectx.cli.config:config",
    "features": "livectx.cli.features:features",
    "memory": "livectx.cli.memory:memory",
    "tier": "livectx.cli.tier:tier",
    "replay": "livectx.cli.replay:replay",
    "skew": "livectx.cli.skew:skew",
    "models": "livectx.cli.models:models",
    "init": "livectx.cli.repo:init",
    "plan": "livectx.cli.repo:plan",
    "cdc": "livectx.cli.cdc:cdc",
    "ui": "livectx.cli.ui:ui",
    "tenants": "livectx.cli.tenants:tenants",
}


class LazyGroup(click.Group):
    """A group whose commands are imported only when invoked (or when help lists them)."""

    def _sources(self) -> dict[str, str]:
        sources = dict(CORE_COMMANDS)
        for ep in entry_points(group="livectx.commands"):
            sources.setdefault(ep.name, ep.value)
        return sources

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self._sources())

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self._sources().get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        return getattr(importlib.import_module(module_name), attr)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except LivectxError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.secho("interrupted", fg="yellow", err=True)
            ctx.exit(130)
        except Exception as exc:  # a Kafka ACL refusal is bad input too: one line, not a traceback
            if type(exc).__name__ != "KafkaException" or "confluent_kafka" not in sys.modules:
                raise
            from livectx.kafka import denial_message

            line = denial_message(exc, ctx.obj.get("settings") if isinstance(ctx.obj, dict) else None)
            if line is None:
                raise
            click.secho(f"error: {line}", fg="red", err=True)
            ctx.exit(1)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="LIVECTX_CONFIG",
    show_envvar=True,
    help="TOML config file (default: ./livectx.toml if present).",
)
@click.option(
    "--repo",
    "feature_repo",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="LIVECTX_FEATURE_REPO",
    show_envvar=True,
    help="The Feast feature repo that declares the domain (default: ./feature_repo).",
)
@click.version_option(__version__, prog_name="livectx")
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None, feature_repo: Path | None) -> None:
    """livectx: real-time context for AI agents (Kafka -> Feast features, embeddings, replay)."""
    if feature_repo is not None:
        import os

        # Settings read it from the environment, and so do the processes a command starts (feast, workers).
        os.environ["LIVECTX_FEATURE_REPO"] = str(feature_repo.resolve())
    ctx.obj = {"config_file": config_file}
    from livectx import tracing

    tracing.configure(f"livectx-{ctx.invoked_subcommand or 'cli'}")  # OTLP when an endpoint is set; else off


def main() -> None:
    cli(prog_name="livectx")
