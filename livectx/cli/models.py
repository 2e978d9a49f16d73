"""``livectx models register | list | show | activate | retire``: the model registry from the shell."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from livectx.cli.common import print_table, settings_from

_topic_option = click.option(
    "--topic",
    default="livectx.models",
    show_default=True,
    help="The compacted registry topic.",
)


@click.group()
def models() -> None:
    """Model versions as data: registered on a compacted topic that agents follow live."""


@models.command()
@click.option("--name", required=True, help="Model (or config) name, e.g. fraud.")
@click.option("--version", "version", required=True, help="A new version, e.g. v2 (versions are immutable).")
@click.option(
    "--artifact",
    type=click.Path(path_type=Path),
    required=True,
    help="The joblib file; copied to <tier url>/_models/<name>/<version>/.",
)
@click.option("--service", default=None, help="The feature service it reads [default: the repo's only one].")
@click.option("--columns", default=None, help="Comma-separated feature columns [default: the service's model columns].")
@click.option("--metrics-json", default=None, help="Figures it was judged by, e.g. '{\"precision\": 0.98}'.")
@click.option("--config-json", default=None, help="Free-form config, e.g. '{\"threshold\": 0.6}'.")
@click.option("--trained-from", type=click.DateTime(), default=None, help="Start of its training data (UTC).")
@click.option("--trained-to", type=click.DateTime(), default=None, help="End of its training data (UTC).")
@click.option("--no-activate", is_flag=True, help="Register only; agents keep the active version.")
@_topic_option
@click.pass_context
def register(
    ctx: click.Context,
    name: str,
    version: str,
    artifact: Path,
    service: str | None,
    columns: str | None,
    metrics_json: str | None,
    config_json: str | None,
    trained_from: datetime | None,
    trained_to: datetime | None,
    no_activate: bool,
    topic: str,
) -> None:
    """Register a new version and (unless --no-activate) make it the one agents use, live."""
    from livectx.models import registry

    record = registry.register(
        settings_from(ctx),
        name,
        version,
        artifact,
        feature_service=service,
        feature_columns=tuple(c.strip() for c in columns.split(",") if c.strip()) if columns else None,
        metrics=_json_object(metrics_json, "--metrics-json"),
        config=_json_object(config_json, "--config-json"),
        training_start=_utc(trained_from),
        training_end=_utc(trained_to),
        activate=not no_activate,
        topic=topic,
    )
    state = "registered" if no_activate else "registered and active"
    click.echo(f"{record.ref} {state}: {record.artifact_uri} (sha256 {record.artifact_sha256[:12]})")


@models.command(name="list")
@click.option("--name", default=None, help="Only this model's versions.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
@_topic_option
@click.pass_context
def list_command(ctx: click.Context, name: str | None, as_json: bool, topic: str) -> None:
    """Every registered version; the active one of each model is marked."""
    from livectx.models import registry

    settings = settings_from(ctx)
    state = registry.snapshot(settings, topic)
    versions = sorted(
        (v for (n, _), v in state.versions.items() if name is None or n == name),
        key=lambda v: (v.name, v.registered_at, v.version),
    )
    active = {n: v.version for n, v in state.active.items()}
    if as_json:
        for v in versions:
            click.echo(json.dumps({**v.model_dump(mode="json"), "active": active.get(v.name) == v.version}))
        return
    print_table(
        f"model versions on {topic}",
        ["model", "version", "active", "service", "registered", "metrics"],
        [
            (
                v.name,
                v.version,
                "yes" if active.get(v.name) == v.version else "",
                v.feature_service,
                v.registered_at.strftime("%Y-%m-%d %H:%M:%S"),
                ", ".join(f"{k}={m:.3g}" for k, m in sorted(v.metrics.items())),
            )
            for v in versions
        ],
    )


@models.command()
@click.argument("ref")
@_topic_option
@click.pass_context
def show(ctx: click.Context, ref: str, topic: str) -> None:
    """One version as JSON: REF is `fraud` (the active version) or `fraud:v1`."""
    from livectx.models import registry

    click.echo(registry.resolve(settings_from(ctx), ref, topic=topic).model_dump_json(indent=2))


@models.command()
@click.argument("ref")
@_topic_option
@click.pass_context
def activate(ctx: click.Context, ref: str, topic: str) -> None:
    """Make a registered version the active one again (a rollback): REF is e.g. `fraud:v1`."""
    from livectx.models import registry

    record = registry.activate(settings_from(ctx), ref, topic=topic)
    click.echo(f"{record.ref} is active")


@models.command()
@click.argument("name")
@_topic_option
@click.pass_context
def retire(ctx: click.Context, name: str, topic: str) -> None:
    """Retire NAME: agents stop using it (they fall back); its versions stay resolvable as NAME:VERSION."""
    from livectx.models import registry

    record = registry.retire(settings_from(ctx), name, topic=topic)
    click.echo(f"{name} retired (was {record.ref})")


def _json_object(text: str | None, option: str) -> dict[str, Any]:
    from livectx.models.errors import ModelRegistryError

    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelRegistryError(f"{option} is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ModelRegistryError(f"{option} must be a JSON object, e.g. '{{\"precision\": 0.98}}'")
    return value


def _utc(value: datetime | None) -> datetime | None:
    from datetime import UTC

    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value
