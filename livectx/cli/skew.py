"""``livectx skew``: the training/serving skew check (online values vs their recomputation from raw events)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from livectx.cli.common import console, feature_service_of, print_table, settings_from


@click.command()
@click.option("--service", default=None, help="Feature service to check [default: the repo's only one].")
@click.option("--sample", type=click.IntRange(min=1), default=100, show_default=True, help="Entities to check.")
@click.option("--seed", type=int, default=0, show_default=True, help="Which entities are sampled.")
@click.option(
    "--source",
    default="archive",
    show_default=True,
    help="Raw events: 'archive' (the cold tier's DuckDB views) or an events Parquet file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def skew(ctx: click.Context, service: str | None, sample: int, seed: int, source: str, as_json: bool) -> None:
    """Compare online feature values with the offline recomputation, each as of the online row's newest
    event time; exit code 1 when any value differs."""
    import tempfile
    import time

    from livectx.features import pit_sql
    from livectx.features.online_reader import OnlineFeatureReader
    from livectx.features.skew import check_skew

    settings = settings_from(ctx)
    service = feature_service_of(ctx, service)
    pit_sql.service_groups(service)  # an unknown name fails before any connection
    with tempfile.TemporaryDirectory(prefix="livectx-skew-") as work, console(stderr=True).status("checking skew..."):
        con = pit_sql.connect(Path(work))
        sources = pit_sql.open_sources(con, settings, source)
        reader = OnlineFeatureReader.from_settings(settings)
        report = check_skew(con, reader, service, sources, now_ms=int(time.time() * 1000), sample=sample, seed=seed)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2, default=str))
    elif report.mismatches:
        print_table(
            f"skew: {service}, {report.entities} entities, {report.checked} rows compared",
            ["entity", "group", "feature", "online", "offline", "as of (ms)", "kind"],
            [(m.entity, m.group, m.feature, m.online, m.offline, m.as_of_ms, m.kind) for m in report.mismatches],
        )
    else:
        click.echo(f"skew: {service}, {report.entities} entities, {report.checked} rows compared")
    if report.skipped_source_behind and not as_json:
        click.echo(f"{report.skipped_source_behind} rows skipped: the raw events are behind the online store")
    if report.mismatches:
        if not as_json:
            click.secho(f"{len(report.mismatches)} mismatches between online and offline values", fg="red", err=True)
        ctx.exit(1)
    if not as_json:
        click.echo("no skew: every online value equals its recomputation")
