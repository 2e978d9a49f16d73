"""``livectx produce``: deterministic synthetic traffic into Kafka."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from livectx.cli.common import console, print_table, settings_from


def _parse_start(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO-8601 time such as 2026-03-10T00:00:00Z") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@click.command()
@click.option(
    "--generator",
    "--scenario",
    "scenario",
    required=True,
    help="A traffic generator the feature repo declares (the example: fraud, support, shop).",
)
@click.option("--count", type=click.IntRange(min=1), help="Number of events to produce.")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), help="Seconds to produce for (needs --rate).")
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    help="Events per second (wall clock). Default: as fast as the broker takes them.",
)
@click.option("--seed", type=int, default=42, show_default=True, help="Same seed + start = same events.")
@click.option(
    "--start",
    callback=_parse_start,
    help="Event time of the first event (ISO-8601). Default: now with --rate (event time follows the clock); "
    "without --rate, back-dated so the last event is now.",
)
@click.option(
    "--speedup",
    type=click.FloatRange(min=1),
    default=1.0,
    help="Event time runs K times faster than the clock (needs --rate; back-dated so it never runs ahead). "
    "Commands that report feature ages then say so.",
)
@click.pass_context
def produce(
    ctx: click.Context,
    scenario: str,
    count: int | None,
    duration: float | None,
    rate: float | None,
    seed: int,
    start: datetime | None,
    speedup: float,
) -> None:
    """Produce deterministic synthetic events from one of the repo's generators (keys are the sources' keys,
    so per-entity order holds; every record is validated against its source's schema first)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from livectx.produce import produce_scenario

    if count is None and duration is None:
        raise click.UsageError("give --count N, or --duration S with --rate N")
    if duration is not None:
        if rate is None:
            raise click.UsageError("--duration needs --rate (events per second)")
        if count is not None:
            raise click.UsageError("give either --count or --duration, not both")
        count = max(1, round(duration * rate))
    assert count is not None
    if speedup != 1 and rate is None:
        raise click.UsageError(f"--speedup {speedup:g} needs --rate (it compresses paced event time)")
    settings = settings_from(ctx)
    with Progress(
        TextColumn(f"producing {scenario}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task("produce", total=count)
        result = produce_scenario(
            settings,
            scenario,
            count=count,
            seed=seed,
            start=start,
            rate=rate,
            speedup=speedup,
            on_progress=lambda n: progress.advance(task, n),
            on_warning=lambda text: console(stderr=True).print(f"[yellow]warning: {text}[/yellow]"),
        )
    print_table(
        f"produced {result.count} {scenario} events in {result.seconds:.2f}s "
        f"({result.count / max(result.seconds, 1e-9):,.0f} ev/s)",
        ["topic", "events"],
        sorted(result.per_topic.items()),
    )
    click.echo(
        f"event time {result.first_event_time:%Y-%m-%dT%H:%M:%S.%fZ} .. {result.last_event_time:%Y-%m-%dT%H:%M:%S.%fZ}"
    )
    if speedup != 1:
        click.echo(f"event time compressed {speedup:g}x: ages read later are event-time ages, {speedup:g}x the clock's")
