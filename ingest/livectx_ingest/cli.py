"""``livectx ingest run features``."""

from __future__ import annotations

import signal

import click

from livectx.cli.common import console, print_table, settings_from


@click.group()
def ingest() -> None:
    """Ingestion workers: Kafka topics into the online store (and later vectors and the archive)."""


@ingest.group()
def run() -> None:
    """Run a worker in the foreground (Ctrl-C stops it after the current batch)."""


@run.command()
@click.option("--topic", default=None, help="Input topic [default: livectx.transactions].")
@click.option("--group", "group_id", default="livectx-features", show_default=True, help="Consumer group.")
@click.option("--batch-size", type=click.IntRange(1, 100_000), default=1000, show_default=True)
@click.option(
    "--until-caught-up",
    is_flag=True,
    help="Stop once the end offsets present at start are processed (demos, backfills, tests).",
)
@click.option("--max-seconds", type=click.FloatRange(min=0, min_open=True), help="Stop after this long.")
@click.pass_context
def features(
    ctx: click.Context,
    topic: str | None,
    group_id: str,
    batch_size: int,
    until_caught_up: bool,
    max_seconds: float | None,
) -> None:
    """Per-user running transaction totals into Feast's online store; bad records to the dead-letter topic."""
    from livectx.topics import TRANSACTIONS
    from livectx_ingest.features_worker import build_features_worker

    settings = settings_from(ctx)
    out = console(stderr=True)
    status = out.status("starting (loading Feast)...")
    status.start()

    def on_batch(stats) -> None:  # type: ignore[no-untyped-def]
        status.update(
            f"consumed {stats.consumed:,}  processed {stats.processed:,}  "
            f"dead-lettered {stats.dead_lettered:,}  ({stats.consumed / max(stats.seconds, 1e-9):,.0f} rec/s)"
        )

    try:
        worker = build_features_worker(
            settings, topic=topic or TRANSACTIONS, group_id=group_id, batch_size=batch_size, on_batch=on_batch
        )
        signal.signal(signal.SIGTERM, lambda *_: worker.stop())
        status.update("consuming...")
        try:
            stats = worker.run(until_caught_up=until_caught_up, max_seconds=max_seconds)
        except KeyboardInterrupt:
            worker.stop()
            stats = worker.stats
    finally:
        status.stop()
    print_table(
        "features worker",
        ["consumed", "processed", "dead-lettered", "batches", "seconds"],
        [(stats.consumed, stats.processed, stats.dead_lettered, stats.batches, f"{stats.seconds:.1f}")],
    )
