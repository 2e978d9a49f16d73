"""``livectx replay range | reset-offsets``: read the log back (cold tier + hot tail), or move a group."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from livectx.cli.common import print_table, settings_from


def _bound(_ctx: click.Context, param: click.Parameter, value: str | None) -> int | datetime | None:
    """An offset (digits) or an ISO datetime with a time zone."""
    if value is None:
        return None
    if value.isdigit():
        return int(value)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is neither an offset nor an ISO datetime") from None
    if parsed.tzinfo is None:
        raise click.BadParameter(f"{value!r} has no time zone; add one, e.g. {value}Z or {value}+00:00")
    return parsed


@click.group()
def replay() -> None:
    """Replay the log from the cold tier and Kafka, or reset a consumer group to a time."""


@replay.command("range")
@click.option("--topic", "topics", multiple=True, required=True, help="Topic to replay (repeatable).")
@click.option("--from", "start", callback=_bound, help="First offset, or an ISO datetime (event time).")
@click.option("--to", "end", callback=_bound, help="End offset (exclusive), or an ISO datetime (exclusive).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Export to FILE.parquet or FILE.jsonl instead of printing JSON lines.",
)
@click.option("--merge-by-event-time", is_flag=True, help="k-way merge the partitions by event time.")
@click.option("--limit", type=click.IntRange(min=1), help="Stop after N records.")
@click.pass_context
def range_(
    ctx: click.Context,
    topics: tuple[str, ...],
    start: int | datetime | None,
    end: int | datetime | None,
    out: Path | None,
    merge_by_event_time: bool,
    limit: int | None,
) -> None:
    """Replay records (archive first, then the broker's hot tail): each offset once, per-partition order."""
    from livectx.errors import LivectxError
    from livectx.tier.export import BatchSink, open_sink
    from livectx.tier.replay import ReplayStats
    from livectx.tier.replay import replay as run_replay

    kinds = {type(b) for b in (start, end) if b is not None}
    if len(kinds) > 1:
        raise LivectxError("--from and --to must both be offsets or both be datetimes")
    by = "time" if datetime in kinds else "offset"
    settings = settings_from(ctx)
    stats = ReplayStats()
    batches = run_replay(
        settings, list(topics), start=start, end=end, by=by, merge_by_event_time=merge_by_event_time, stats=stats
    )
    sink: BatchSink = open_sink(out)
    written = 0
    try:
        for batch in batches:
            if limit is not None and written + batch.num_rows > limit:
                batch = batch.slice(0, limit - written)
            sink.write(batch)
            written += batch.num_rows
            if limit is not None and written >= limit:
                break
    finally:
        sink.close()
    click.echo(
        f"replayed {written:,} records ({stats.cold_records:,} from {stats.cold_files:,} archived files, "
        f"{stats.hot_records:,} from the broker)" + (f" to {out}" if out else ""),
        err=True,
    )


@replay.command("reset-offsets")
@click.option("--group", required=True, help="Consumer group to move.")
@click.option("--topic", required=True, help="Topic whose offsets move.")
@click.option("--to-datetime", "to", required=True, callback=_bound, help="ISO datetime with a time zone.")
@click.option("--execute", is_flag=True, help="Apply the plan (default: dry run, like kafka-consumer-groups.sh).")
@click.pass_context
def reset_offsets(ctx: click.Context, group: str, topic: str, to: int | datetime, execute: bool) -> None:
    """Move GROUP's committed offsets on TOPIC to the first record at or after a time (Kafka timestamps)."""
    from livectx.errors import LivectxError
    from livectx.kafka import require_reachable
    from livectx.tier.reset import execute_reset, plan_reset

    if not isinstance(to, datetime):
        raise click.BadParameter("expected an ISO datetime, e.g. 2024-05-01T00:00:00Z", param_hint="--to-datetime")
    settings = settings_from(ctx)
    require_reachable(settings)
    moves = plan_reset(settings, group, topic, to)
    print_table(
        f"reset {group} on {topic} to {to.isoformat()}" + ("" if execute else " (dry run: add --execute)"),
        ["partition", "current", "new", "note"],
        [
            (
                m.partition,
                "-" if m.current is None else m.current,
                m.target,
                "older records only in the cold tier: `livectx replay range`" if m.before_hot else "",
            )
            for m in moves
        ],
    )
    if execute:
        execute_reset(settings, group, moves)
        click.echo(f"group {group} moved on {len(moves)} partition(s)")
    elif not moves:
        raise LivectxError(f"topic {topic!r} has no partitions")
