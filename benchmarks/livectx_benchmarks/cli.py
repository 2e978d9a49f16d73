"""``livectx bench``."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from pathlib import Path

import click

from livectx.cli.common import console, print_figures, print_table, settings_from
from livectx.errors import UnknownNameError

BENCHMARKS: dict[str, tuple[str, str]] = {
    "kafka": (
        "livectx_benchmarks.kafka_throughput:run",
        "raw confluent-kafka produce + consume msgs/s on the broker (the pipeline baseline)",
    ),
    "features": (
        "livectx_benchmarks.features:run",
        "streaming feature engine: events/s vs raw consume, event-to-online freshness p50/p99",
    ),
    "embeddings": (
        "livectx_benchmarks.embeddings:run",
        "embedding worker texts/s vs the raw model, event-to-searchable p50/p99, pgvector top-10 p50/p99 "
        "and recall@10 at 100k vectors",
    ),
    "embedding-backends": (
        "livectx_benchmarks.embedding_backends:run",
        "the embedding model's CPU backends (torch, ONNX fp32, ONNX int8) on the same texts: texts/s, "
        "speed-up, recall@10 and cosine to torch (no stack needed)",
    ),
    "context": (
        "livectx_benchmarks.context:run",
        "get_context p99 vs its parts alone; fast feature read path vs raw Redis and Feast SDK (1 and 100 users)",
    ),
    "tier": (
        "livectx_benchmarks.tier:run",
        "cold tier: archiver events/s vs raw consume, cold replay events/s, training-set build seconds and peak MB "
        "(1M events x 100k labels) beside Feast get_historical_features",
    ),
    "backtest": (
        "livectx_benchmarks.backtest:run",
        "livectx backtest run over 1M archived fraud events, two versions: seconds and events/s vs raw replay",
    ),
    "cdc": (
        "livectx_benchmarks.cdc:run",
        "a committed Postgres row to searchable memory through Debezium, Kafka, the model and pgvector: "
        "p50/p99 per stage (needs `livectx stack up --with cdc`)",
    ),
    "attack": (
        "livectx_benchmarks.attack_report:run",
        "the article's card-testing story at 1,000 payments/s on the live path (the feature worker, Redis, the fraud "
        "agent with the registered model): attack payments declined with fresh features vs a 15-minute batch "
        "snapshot, first payment to first decline, decision p50/p99, false positives (+ a plot; -o rate=1000, "
        "-o live=0: in-process, no stack)",
    ),
    "online-read": (
        "livectx_benchmarks.online_read:run",
        "Feast get_online_features vs raw redis-py HMGET, 1 and 100 entities (p50/p99 ms)",
    ),
    "quota": (
        "livectx_benchmarks.quota:run",
        "fraud decision p99 and feature freshness p99 quiet, beside a research tenant's unthrottled history "
        "replay, and with its Kafka quota (secured stack: the configured one, else a private one it starts; "
        "-o seconds=40 -o rate=1000 -o history=300000 -o quota_bytes=1048576 -o settle=8)",
    ),
    "soak": (
        "livectx_benchmarks.soak:run",
        "everything at once for --minutes (10) as separate processes: the feature worker at 5,000 payments/s, the "
        "embedding worker at 50 texts/s, the fraud agent deciding; per minute freshness p99, lag, RSS of every "
        "process, Redis memory (-o rate=5000 -o texts_rate=50 -o agent_rate=100 -o minute_s=60 -o warmup=1)",
    ),
    "scaling": (
        "livectx_benchmarks.scaling:run",
        "throughput and memory against entities (10k-1M), views on one topic (1-16), worker processes (1-2) and "
        "pgvector size (30k, 100k; -o max_vectors=1000000 adds 1M): HNSW build s, top-10 p99 (+ a plot; "
        "-o max_entities=N)",
    ),
}


@click.command()
@click.argument("name", required=False)
@click.option("--list", "list_only", is_flag=True, help="List the benchmarks.")
@click.option(
    "--json",
    "json_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the figures [default: bench-results/NAME.json].",
)
@click.option(
    "--scale",
    type=click.FloatRange(min=0.01, max=100),
    default=1.0,
    show_default=True,
    help="Multiply the benchmark's size (use <1 for a quick smoke run).",
)
@click.option(
    "--minutes",
    type=float,
    default=None,
    help="How long a benchmark that runs for minutes runs (`bench soak`; default: its own, 10).",
)
@click.option(
    "-o",
    "--option",
    "options",
    multiple=True,
    metavar="NAME=NUMBER",
    help="One of the benchmark's own options, e.g. `-o seconds=30` (see `bench --list`; repeatable).",
)
@click.pass_context
def bench(
    ctx: click.Context,
    name: str | None,
    list_only: bool,
    json_file: Path | None,
    scale: float,
    minutes: float | None,
    options: tuple[str, ...],
) -> None:
    """Run a named benchmark: prints a table and writes a flat JSON object of figures."""
    if list_only or name is None:
        print_table("benchmarks", ["name", "measures"], [(n, d) for n, (_, d) in BENCHMARKS.items()])
        return
    if name not in BENCHMARKS:
        raise UnknownNameError(f"unknown benchmark {name!r}; available: {', '.join(BENCHMARKS)} (see --list)")
    module_name, attr = BENCHMARKS[name][0].split(":")
    run = getattr(importlib.import_module(module_name), attr)
    extra: dict[str, float] = bench_options(name, run, options)
    if minutes is not None:
        if "minutes" not in inspect.signature(run).parameters:
            raise click.UsageError(f"benchmark {name} does not run for minutes: --minutes is for `bench soak`")
        if "minutes" in extra:
            raise click.UsageError("give --minutes or -o minutes=..., not both")
        extra["minutes"] = minutes
    with console(stderr=True).status(f"running benchmark {name}..."):
        result = run(settings_from(ctx), scale=scale, **extra)
    for table in result.tables:
        print_table(table.title, table.columns, table.rows)
    print_figures(f"benchmark {name}", result.figures, ",.3f")
    for note in result.notes:
        click.echo(note)
    target = json_file or Path("bench-results") / f"{name}.json"
    result.write_json(target)
    click.echo(f"figures written to {target}")


def bench_options(name: str, run: Callable[..., object], options: tuple[str, ...]) -> dict[str, float]:
    """``NAME=NUMBER`` pairs as keyword arguments of the benchmark's ``run`` (one readable line when the
    benchmark has no such option or the value is not a number)."""
    accepted = [p for p in inspect.signature(run).parameters if p not in ("settings", "scale")]
    parsed: dict[str, float] = {}
    for option in options:
        key, sep, value = option.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in accepted:
            known = ", ".join(accepted) or "none"
            raise click.UsageError(f"benchmark {name} has no option {option!r} (NAME=NUMBER; its options: {known})")
        try:
            parsed[key] = float(value)
        except ValueError:
            raise click.UsageError(f"-o {option}: {value!r} is not a number") from None
    return parsed


@click.group()
def demo() -> None:
    """The example domain's stories, run on the local stack as a person would watch them."""


@demo.command("attack")
@click.option(
    "--scale",
    type=click.FloatRange(min=0.25, max=1),
    default=1.0,
    show_default=True,
    help="Share of the 60-second run (0.3: 18 s, one burst).",
)
@click.option("--rate", type=click.FloatRange(min=10, max=5000), default=1000.0, show_default=True, help="Payments/s.")
@click.option(
    "--in-process",
    is_flag=True,
    help="Decide over the engine's state in this process (no stack) instead of the live path.",
)
@click.pass_context
def attack(ctx: click.Context, scale: float, rate: float, in_process: bool) -> None:
    """The article's card-testing attack: payments at RATE with bursts of card testing, the fraud agent on
    fresh features (Kafka, the feature worker, Redis, `get_context`, the registered model) beside the same
    model on a 15-minute batch snapshot. Prints the table, writes bench-results/attack.png (and .json)."""
    options = (f"rate={rate}", f"live={0 if in_process else 1}")
    ctx.invoke(bench, name="attack", scale=scale, options=options, list_only=False, json_file=None, minutes=None)
