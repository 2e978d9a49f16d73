"""``livectx memory search | status``: look into the agent's semantic memory (the vector index)."""

from __future__ import annotations

import json
from datetime import datetime

import click

from livectx.cli.common import print_table, settings_from


@click.group()
def memory() -> None:
    """The semantic memory: search the vector index, see how far it is behind the text topics."""


def _epoch_ms(_ctx: click.Context, _param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO-8601 time, e.g. 2026-11-26T10:00:00Z") from None
    if parsed.tzinfo is None:
        raise click.BadParameter(f"{value!r} has no timezone: add Z or +00:00")
    return int(parsed.timestamp() * 1000)


@memory.command()
@click.argument("text")
@click.option("-k", "--top-k", type=click.IntRange(1, 1000), default=5, show_default=True)
@click.option("--tenant", default=None, help="Only this tenant's items.")
@click.option("--category", "categories", multiple=True, help="Only these categories (repeatable).")
@click.option("--view", "views", multiple=True, help="Only these memory views of the repo (repeatable).")
@click.option("--source", "sources", multiple=True, help="Only items of these sources (repeatable).")
@click.option("--since", callback=_epoch_ms, help="Event time at or after (ISO-8601).")
@click.option("--until", callback=_epoch_ms, help="Event time before (ISO-8601).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def search(
    ctx: click.Context,
    text: str,
    top_k: int,
    tenant: str | None,
    categories: tuple[str, ...],
    views: tuple[str, ...],
    sources: tuple[str, ...],
    since: int | None,
    until: int | None,
    as_json: bool,
) -> None:
    """The TOP_K items most similar to TEXT (embedded with the same model as the index)."""
    from livectx.vectors import VectorFilter, open_vector_store
    from livectx.vectors.embedder import Embedder

    settings = settings_from(ctx)
    if views:
        from livectx.repo import current_repo

        repo = current_repo(settings)
        sources = (*sources, *(repo.memory_view(v).schema for v in views))
    embedder = Embedder.from_settings(settings)
    store = open_vector_store(settings)
    try:
        where = VectorFilter(tenant, tuple(categories), tuple(sources), since, until)
        hits = store.search(embedder.embed([text])[0], top_k=top_k, where=where)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps([hit.__dict__ for hit in hits], indent=2, default=str))
        return
    print_table(
        f"{len(hits)} most similar in {settings.vector.backend}:{settings.vector.index}",
        ["score", "id", "tenant", "category", "event time", "text"],
        [
            (
                f"{h.score:.3f}",
                h.id,
                h.tenant,
                h.category or "",
                datetime.fromtimestamp(h.event_ms / 1000).astimezone().isoformat(timespec="seconds"),
                h.text.replace("\n", " ")[:80],
            )
            for h in hits
        ],
    )


@memory.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Vectors in the index, and per text-topic partition: the watermark (searchable below) vs the log end."""
    from livectx.kafka import require_reachable
    from livectx.offsets import end_offsets
    from livectx.redis_client import redis_client
    from livectx.repo import current_repo
    from livectx.vectors import open_vector_store
    from livectx.vectors.watermark import IndexWatermark

    settings = settings_from(ctx)
    require_reachable(settings)
    store = open_vector_store(settings)
    try:
        count = store.count()
    finally:
        store.close()
    positions = IndexWatermark(redis_client(settings), settings.vector.index).positions()
    ends = end_offsets(settings, list(current_repo(settings).text_sources))
    rows = [
        {"topic": t, "partition": p, "searchable_below": positions.get((t, p), 0), "end": end,
         "behind": max(0, end - positions.get((t, p), 0))}
        for (t, p), end in sorted(ends.items())
    ]  # fmt: skip
    if as_json:
        click.echo(json.dumps({"index": settings.vector.index, "vectors": count, "partitions": rows}, indent=2))
        return
    print_table(
        f"{settings.vector.backend}:{settings.vector.index}: {count:,} vectors",
        ["topic", "partition", "searchable below offset", "log end", "behind"],
        [(r["topic"], r["partition"], r["searchable_below"], r["end"], r["behind"]) for r in rows],
    )
