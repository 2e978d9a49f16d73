"""``livectx ingest run features | embeddings | archive`` and ``livectx ingest lag``."""

from __future__ import annotations

import click

from livectx.cli.common import print_figures, print_table, progress, settings_from
from livectx_ingest.streaming.cadence import COMMIT_INTERVAL_S, MAX_BATCH

UNTIL_CAUGHT_UP = click.option(
    "--until-caught-up",
    is_flag=True,
    help="Stop once the group committed the end offsets present at start (demos, backfills, tests).",
)
METRICS_PORT = click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Serve Prometheus metrics at http://127.0.0.1:PORT/metrics (0: none).",
)


@click.group()
def ingest() -> None:
    """Ingestion workers: Kafka topics into the online feature store and the vector index."""


@ingest.group()
def run() -> None:
    """Run a worker in the foreground (Ctrl-C or SIGTERM stops it after committing its checkpoint)."""


def _parse_topic_map(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    mapping = {}
    for value in values:
        source, sep, target = value.partition("=")
        if not sep or not source or not target:
            raise click.BadParameter(f"{value!r} is not SOURCE=TARGET, e.g. orders=orders.replayed")
        mapping[source] = target
    return mapping


def _parse_groups(_ctx: click.Context, _param: click.Parameter, value: str | None) -> list[str] | None:
    if value is None:
        return None
    from livectx.repo import current_repo

    names = [n.strip() for n in value.split(",") if n.strip()]
    repo = current_repo(settings_from(_ctx))
    known = {g.name for g in (*repo.groups, *repo.tables)}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise click.BadParameter(
            f"unknown stream feature view(s) {', '.join(unknown)}; the repo declares: {', '.join(sorted(known))}"
        )
    return names


@run.command()
@click.option(
    "--groups",
    "--views",
    "groups",
    callback=_parse_groups,
    help="Comma-separated stream feature views of the repo, windowed or over a table's rows [default: every one "
    "declared].",
)
@click.option("--group", "consumer_group", default="livectx-features", show_default=True, help="Consumer group.")
@click.option(
    "--worker-id",
    default="0",
    show_default=True,
    help="Unique per process in the group: names its Kafka client and metrics file.",
)
@click.option(
    "--guarantee",
    type=click.Choice(["exactly-once", "at-least-once"]),
    default="exactly-once",
    show_default=True,
    help="Processing guarantee.",
)
@click.option(
    "--commit-interval",
    type=click.FloatRange(min=0.001),
    default=COMMIT_INTERVAL_S,
    show_default=True,
    help="Seconds between checkpoint starts while keeping up (online writes + commit): the freshness knob. "
    "Under a backlog checkpoints space out by themselves.",
)
@click.option(
    "--max-batch",
    type=click.IntRange(1, 100_000),
    default=MAX_BATCH,
    show_default=True,
    help="Events per consume call: bounds the work between two checkpoint checks.",
)
@click.option(
    "--source-topic",
    "topic_map",
    multiple=True,
    callback=_parse_topic_map,
    metavar="SOURCE=TARGET",
    help="Read TARGET instead of the declared SOURCE topic (repeatable).",
)
@click.option("--dead-letter-topic", default=None, help="[default: livectx.dead-letter]")
@click.option("--late-topic", default="livectx.late-events", show_default=True)
@click.option(
    "--no-offline",
    is_flag=True,
    help="Skip the Parquet copy of window updates (its rows are per event: without it, batches can take "
    "the columnar path).",
)
@click.option(
    "--columnar-min",
    type=click.IntRange(min=1),
    default=None,
    help="Partition batches of at least this many events are decoded and aggregated as Arrow columns "
    "(with --no-offline); smaller ones event by event.  [default: 400, the engine's COLUMNAR_MIN]",
)
@click.option(
    "--metrics-interval",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds between freshness/lag exports to <state dir>/metrics/<group>-<worker>.json.",
)
@METRICS_PORT
@UNTIL_CAUGHT_UP
@click.pass_context
def features(
    ctx: click.Context,
    groups: list[str] | None,
    consumer_group: str,
    worker_id: str,
    guarantee: str,
    commit_interval: float,
    max_batch: int,
    topic_map: dict[str, str],
    dead_letter_topic: str | None,
    late_topic: str,
    no_offline: bool,
    columnar_min: int | None,
    metrics_interval: float,
    metrics_port: int,
    until_caught_up: bool,
) -> None:
    """Streaming features into Feast's online store (exactly-once checkpoints in Redis): windowed views, and
    views over a captured table's current rows."""
    from livectx.repo import current_repo
    from livectx_ingest.streaming.worker import run_features_worker

    settings = settings_from(ctx)
    repo = current_repo(settings)
    chosen = tuple(g for g in repo.groups if groups is None or g.name in groups)
    tables = tuple(t for t in repo.tables if groups is None or t.name in groups)
    with progress("starting the feature engine...", lambda s: f"rows written online {s.rows_written:,}") as on_progress:
        stats, late = run_features_worker(
            settings,
            groups=chosen,
            tables=tables,
            consumer_group=consumer_group,
            worker_id=worker_id,
            processing_guarantee=guarantee,
            until_caught_up=until_caught_up,
            topic_map=topic_map,
            dead_letter_topic=dead_letter_topic,
            late_topic=late_topic,
            commit_interval_s=commit_interval,
            max_batch=max_batch,
            write_offline=not no_offline,
            metrics_interval_s=metrics_interval,
            metrics_port=metrics_port,
            on_progress=on_progress,
            **({} if columnar_min is None else {"columnar_min": columnar_min}),
        )
    rows = [
        ("events processed", f"{stats.events:,}"),
        ("events applied as columns", f"{stats.events_columnar:,}"),
        ("rows written online", f"{stats.rows_written:,}"),
    ]
    if stats.busy_s > 0:
        rows.append(("events/s (first record to last commit)", f"{stats.events / stats.busy_s:,.0f}"))
    if stats.freshness_ms:
        from livectx.metrics import percentile

        rows += [
            ("freshness p50 (event -> online, ms)", f"{percentile(stats.freshness_ms, 50):,.0f}"),
            ("freshness p99 (ms)", f"{percentile(stats.freshness_ms, 99):,.0f}"),
        ]
    rows += [(f"late events ({name})", count) for name, count in sorted(late.items())]
    print_table("feature engine", ["figure", "value"], rows)


def _parse_text_topics(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> list[str] | None:
    """Memory views by name, or by their topic."""
    from livectx.repo import current_repo

    repo = current_repo(settings_from(_ctx))
    by_topic = {t.topic: name for name, t in repo.memory.items()}
    unknown = [v for v in values if v not in repo.memory and v not in by_topic]
    if unknown:
        known = ", ".join(sorted([*repo.memory, *by_topic]))
        raise click.BadParameter(f"{', '.join(unknown)} not a memory view or its topic; the repo declares: {known}")
    return [by_topic.get(v, v) for v in values] or None


@run.command()
@click.option(
    "--view",
    "--topic",
    "topics",
    multiple=True,
    callback=_parse_text_topics,
    help="A memory view of the repo (or its topic) to embed (repeatable) [default: every one declared].",
)
@click.option("--group", "consumer_group", default="livectx-embeddings", show_default=True, help="Consumer group.")
@click.option("--worker-id", default="0", show_default=True, help="Names this process in logs and dead letters.")
@click.option(
    "--source-topic",
    "topic_map",
    multiple=True,
    callback=_parse_topic_map,
    metavar="SOURCE=TARGET",
    help="Read TARGET instead of the declared SOURCE topic (repeatable).",
)
@click.option(
    "--batch-size", type=click.IntRange(1, 4096), default=None, help="Close a batch at N texts [default: 64]."
)
@click.option(
    "--max-wait-ms", type=click.IntRange(1, 60_000), default=None, help="...or T ms after its first text [default: 20]."
)
@click.option(
    "--max-pending",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    help="Embedded batches that may wait for the vector store before consumption pauses.",
)
@click.option("--dead-letter-topic", default=None, help="[default: livectx.dead-letter]")
@METRICS_PORT
@UNTIL_CAUGHT_UP
@click.pass_context
def embeddings(
    ctx: click.Context,
    topics: list[str] | None,
    consumer_group: str,
    worker_id: str,
    topic_map: dict[str, str],
    batch_size: int | None,
    max_wait_ms: int | None,
    max_pending: int,
    dead_letter_topic: str | None,
    metrics_port: int,
    until_caught_up: bool,
) -> None:
    """Embed the texts of the repo's memory views into the vector store, with a searchable watermark."""
    from livectx.prometheus import serve_metrics
    from livectx.prometheus_targets import registered_target
    from livectx.repo import current_repo
    from livectx_ingest.embeddings.worker import run_embeddings_worker

    settings = settings_from(ctx)
    server = serve_metrics(metrics_port)  # a daemon thread: it ends with the worker's process
    labels = {"job": "livectx-embeddings", "consumer_group": consumer_group, "worker_id": worker_id}
    with (
        registered_target(settings, f"embeddings-{consumer_group}-{worker_id}", server and server.server_port, labels),
        progress(
            "loading the embedding model...",
            lambda s: f"embedded {s.embedded:,}  deleted {s.deleted:,}  dead letters {s.dead_lettered:,}",
        ) as on_progress,
    ):
        stats = run_embeddings_worker(
            settings,
            until_caught_up=until_caught_up,
            consumer_group=consumer_group,
            worker_id=worker_id,
            topic_map=topic_map,
            sources=[current_repo(settings).memory[v] for v in topics] if topics else None,
            batch_size=batch_size,
            max_wait_ms=max_wait_ms,
            max_pending=max_pending,
            dead_letter_topic=dead_letter_topic,
            on_progress=on_progress,
        )
    print_figures("embedding worker", stats.summary())


@run.command()
@click.option(
    "--topic",
    "topics",
    multiple=True,
    help="A topic to archive (repeatable) [default: every source topic of the repo, and the decisions].",
)
@click.option("--group", "consumer_group", default="livectx-archive", show_default=True, help="Consumer group.")
@click.option("--worker-id", default="0", show_default=True, help="Names this process in logs, files and metrics.")
@click.option(
    "--compact-interval",
    type=click.FloatRange(min=0),
    default=300.0,
    show_default=True,
    help="Seconds between background compactions of small files (0: never).",
)
@click.option(
    "--metrics-interval",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds between progress/lag exports to <state dir>/metrics/<group>-<worker>.json.",
)
@UNTIL_CAUGHT_UP
@click.pass_context
def archive(
    ctx: click.Context,
    topics: tuple[str, ...],
    consumer_group: str,
    worker_id: str,
    compact_interval: float,
    metrics_interval: float,
    until_caught_up: bool,
) -> None:
    """Archive topics to Parquet in the cold tier (LIVECTX_TIER_URL), exactly once, raw bytes kept."""
    from livectx_ingest.archive.worker import run_archive_worker

    settings = settings_from(ctx)
    with progress(
        f"archiving to {settings.tier_url}...", lambda s: f"archived {s.archived:,} records in {s.files:,} files"
    ) as on_progress:
        stats = run_archive_worker(
            settings,
            until_caught_up=until_caught_up,
            topics=list(topics) or None,
            consumer_group=consumer_group,
            worker_id=worker_id,
            compact_interval_s=compact_interval,
            metrics_interval_s=metrics_interval,
            on_progress=on_progress,
        )
    print_figures("archiver", stats.summary())
    if stats.gaps:
        from livectx.errors import LivectxError

        topic, partition, start, end = stats.gaps[0]
        raise LivectxError(
            f"{len(stats.gaps)} gap(s): {topic}[{partition}] offsets {start}..{end - 1} expired before they were "
            "archived (see `livectx tier status`)"
        )


@ingest.command()
@click.option("--group", "consumer_group", default="livectx-features", show_default=True, help="Consumer group.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def lag(ctx: click.Context, consumer_group: str, as_json: bool) -> None:
    """Consumer lag of a worker group: committed offset vs end offset, per partition it has committed."""
    import json

    from livectx.errors import LivectxError
    from livectx.kafka import require_reachable
    from livectx.offsets import group_lag

    settings = settings_from(ctx)
    require_reachable(settings)
    rows = group_lag(settings, consumer_group)
    if not rows:
        raise LivectxError(f"consumer group {consumer_group!r} has no committed offsets (never ran, or expired)")
    if as_json:
        click.echo(
            json.dumps(
                [{"topic": t, "partition": p, "committed": c, "end": e, "lag": e - c} for t, p, c, e in rows], indent=2
            )
        )
        return
    print_table(
        f"lag of {consumer_group} (total {sum(e - c for _, _, c, e in rows):,})",
        ["topic", "partition", "committed", "end", "lag"],
        [(t, p, c, e, e - c) for t, p, c, e in rows],
    )
