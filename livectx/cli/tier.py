"""``livectx tier status | compact``: the hot and cold tiers side by side, and small-file compaction."""

from __future__ import annotations

import click

from livectx.cli.common import print_table, settings_from, styled


@click.group()
def tier() -> None:
    """The cold tier (Parquet archive): status per partition, compaction."""


@tier.command()
@click.option("--topic", "topics", multiple=True, help="A topic (repeatable) [default: every archived topic].")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def status(ctx: click.Context, topics: tuple[str, ...], as_json: bool) -> None:
    """Per topic and partition: hot range on the broker, cold range in the archive, gaps (exit 1 if any)."""
    import json

    from livectx.errors import LivectxError
    from livectx.kafka import require_reachable
    from livectx.tier.coverage import describe_gap
    from livectx.tier.status import tier_status

    settings = settings_from(ctx)
    require_reachable(settings)
    rows = tier_status(settings, list(topics) or None)
    if not rows:
        raise LivectxError(f"nothing archived at {settings.tier_url} (run `livectx ingest run archive`)")
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in rows], indent=2))
    else:
        print_table(
            f"cold tier {settings.tier_url}",
            ["topic", "partition", "hot (broker)", "cold (archive)", "files", "records", "gap"],
            [
                (
                    r.topic,
                    r.partition,
                    "-" if r.hot_low is None else _range(r.hot_low, r.hot_high),
                    "-" if r.cold_first is None else f"{r.cold_first:,}..{r.cold_last:,}",
                    r.cold_files,
                    f"{r.cold_records:,}",
                    styled(", ".join(f"{a:,}..{b - 1:,}" for a, b in r.gaps), "bold red") if r.gaps else "none",
                )
                for r in rows
            ],
        )
    gaps = [(r, g) for r in rows for g in r.gaps]
    if gaps:
        row, gap = gaps[0]
        raise LivectxError(f"{len(gaps)} gap(s); first: {describe_gap(row.topic, row.partition, gap)}")


@tier.command()
@click.option("--topic", "topics", multiple=True, help="A topic (repeatable) [default: every archived topic].")
@click.option(
    "--orphan-grace",
    type=click.FloatRange(min=0),
    default=3600.0,
    show_default=True,
    help="Seconds an unlisted data file must be old before it is deleted (a file being written is unlisted).",
)
@click.pass_context
def compact(ctx: click.Context, topics: tuple[str, ...], orphan_grace: float) -> None:
    """Merge small files (below LIVECTX_TIER_COMPACT_BELOW_RECORDS) and delete what they replaced."""
    from livectx.tier.compaction import compact as run_compaction

    result = run_compaction(settings_from(ctx), list(topics) or None, orphan_grace_s=orphan_grace)
    print_table(
        "compaction",
        ["figure", "value"],
        [
            ("small files merged", result.merged_files),
            ("files written", result.written_files),
            ("files deleted", result.deleted_files),
        ],
    )


def _range(low: int, high: int | None) -> str:
    return "empty" if high is None or high <= low else f"{low:,}..{high - 1:,}"
