"""``livectx features get``: read online features through Feast, as an agent would."""

from __future__ import annotations

import json

import click

from livectx.cli.common import feature_service_of, print_table, settings_from


@click.group()
def features() -> None:
    """Read features from the online store."""


@features.command()
@click.argument("entity_ids", nargs=-1, required=True)
@click.option(
    "--service", "feature_service", default=None, help="A feature service of the repo [default: its only one]."
)
@click.option("--view", default=None, help="One feature view instead of a service (e.g. a view over a table's rows).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def get(
    ctx: click.Context, entity_ids: tuple[str, ...], feature_service: str | None, view: str | None, as_json: bool
) -> None:
    """Online feature values for ENTITY_IDS (the service's or view's entity), read through Feast's
    get_online_features."""
    from livectx.errors import LivectxError
    from livectx.feast_store import open_feature_store
    from livectx.repo import current_repo

    settings = settings_from(ctx)
    repo = current_repo(settings)
    features: object
    if view is not None:
        views = {v.name: v for v in (*repo.groups, *repo.tables)}
        if view not in views:
            raise LivectxError(f"unknown feature view {view!r}; the repo declares: {', '.join(views) or 'none'}")
        join_key, title = views[view].entity_key, view
        features = [f"{view}:{f.name}" for f in views[view].features] + [f"{view}:{views[view].event_time_field}"]
    else:
        feature_service = title = feature_service_of(ctx, feature_service)
        join_key = repo.service_groups(feature_service)[0].entity_key
    store = open_feature_store(settings)
    if view is None:
        try:
            features = store.get_feature_service(feature_service)
        except Exception:
            raise LivectxError(f"feature service {feature_service!r} not found: run `livectx feast apply`") from None
    try:
        result = store.get_online_features(features=features, entity_rows=[{join_key: u} for u in entity_ids]).to_dict()
    except Exception as exc:  # e.g. a view not applied yet: one line, not Feast's traceback
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise LivectxError(f"reading {title} failed: {first} (has `livectx feast apply` run?)") from None
    if as_json:
        click.echo(json.dumps(result, indent=2, default=str))
        return
    # One row per feature, one column per entity: services have many features, callers few entities.
    # The freshness columns become one "age" row per group: now minus the newest event's time.
    import time

    ids = [str(v) for v in result.pop(join_key)]
    now_ms = time.time() * 1000
    rows = []
    for name, values in result.items():
        if name.endswith(("__written_ms", "__window_end_ms")):
            continue
        if name.endswith("__event_ms"):
            rows.append(
                (
                    f"{name.removesuffix('__event_ms')} age (s)",
                    *(None if v is None else f"{(now_ms - v) / 1000:,.1f}" for v in values),
                )
            )
        else:
            rows.append((name, *(round(v, 3) if isinstance(v, float) else v for v in values)))
    print_table(f"online features ({title})", ["feature", *ids], rows)
    from livectx import timebase

    if (note := timebase.note(settings)) is not None:
        click.echo(note)
