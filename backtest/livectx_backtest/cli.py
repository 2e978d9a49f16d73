"""``livectx backtest``: training sets and models from the platform's history."""

from __future__ import annotations

from pathlib import Path

import click

from livectx import topics
from livectx.cli.common import settings_from


@click.group()
def backtest() -> None:
    """Train and compare models on history (point-in-time features, no leakage)."""


@backtest.command("train")
@click.option("--features", "service", default=None, metavar="SERVICE",
              help="The decision service to train for [default: the repo's only one].")  # fmt: skip
@click.option("--generator", required=True, help="The repo generator whose history to train on (livectx produce's).")
@click.option("--seed", type=int, default=1, show_default=True, help="Generator seed of the training history.")
@click.option("--eval-seed", type=int, default=2, show_default=True, help="Another seed, for out-of-sample figures.")
@click.option("--events", type=click.IntRange(min=1000), default=40_000, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Where to save (joblib).")
@click.option(
    "--register",
    "register_as",
    default=None,
    metavar="NAME:VERSION",
    help="Also register it in the model registry (agents following NAME switch to it).",
)
@click.option("--models-topic", default=topics.MODELS, show_default=True, help="The registry topic (with --register).")
@click.pass_context
def train(
    ctx: click.Context,
    service: str | None,
    generator: str,
    seed: int,
    eval_seed: int,
    events: int,
    out: Path,
    register_as: str | None,
    models_topic: str,
) -> None:
    """Train a decision's model on a generator's point-in-time history; report out-of-sample precision/recall."""
    from livectx.cli.common import console, print_table
    from livectx.models import parse_ref
    from livectx.repo import current_repo
    from livectx_backtest import train as trainer

    if seed == eval_seed:
        raise click.BadParameter("must differ from --seed (figures must be out of sample)", param_hint="--eval-seed")
    name, version = parse_ref(register_as) if register_as else (None, None)
    if register_as and version is None:
        raise click.BadParameter("name a version, e.g. NAME:v3", param_hint="--register")
    settings = settings_from(ctx)
    decision = current_repo(settings).decision(service)
    current_repo(settings).generator(generator)  # an unknown name fails here, naming the declared ones
    with console(stderr=True).status(f"recomputing point-in-time features for {events:,} events and training..."):
        model = trainer.train(decision, generator, seed, events)
        result = trainer.evaluate(model, *trainer.training_rows(decision, generator, eval_seed, events))
    trainer.save(model, out)
    print_table(
        f"{decision.service} model (generator {generator}: trained on seed {seed}, judged on seed {eval_seed})",
        ["figure", "value"],
        [
            (f"scored events ({decision.source}) judged", result.scored),
            (f"positives ({decision.label}) among them", result.positives),
            ("precision", f"{result.precision:.3f}"),
            ("recall", f"{result.recall:.3f}"),
            ("saved to", str(out)),
        ],
    )
    if name is not None and version is not None:
        from livectx.models import registry

        record = registry.register(
            settings, name, version, out, feature_service=decision.service, feature_columns=decision.columns,
            topic=models_topic,
            metrics={"precision": result.precision, "recall": result.recall, "scored": float(result.scored)},
            config={"threshold": 0.5, "generator": generator, "trained_on_seed": seed, "judged_on_seed": eval_seed,
                    "events": events},
        )  # fmt: skip
        click.echo(f"registered {record.ref} ({record.artifact_uri}); agents following {name} now use it")


@backtest.command("dataset")
@click.option(
    "--labels",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Parquet of labels: the entity column (the service's join key), event_timestamp, any label columns.",
)
@click.option("--features", "service", required=True, help="The feature service whose features to join.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Where to write (Parquet).")
@click.option(
    "--source",
    default="archive",
    show_default=True,
    help="Raw events for the recomputation: 'archive' (the cold tier) or an events Parquet file.",
)
@click.option(
    "--via",
    type=click.Choice(["recompute", "feast", "both"]),
    default="recompute",
    show_default=True,
    help="Recompute from raw events (DuckDB), Feast get_historical_features, or both (fails on any difference).",
)
@click.option("--memory-limit", default="400MB", show_default=True, help="DuckDB memory limit; beyond it, it spills.")
@click.pass_context
def dataset(
    ctx: click.Context, labels: Path, service: str, out: Path, source: str, via: str, memory_limit: str
) -> None:
    """Build a point-in-time-correct training set: features as of each label's event_timestamp, never later."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from livectx.cli.common import console, settings_from
    from livectx_backtest.dataset import build_training_set

    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console(stderr=True), transient=True) as progress:
        task = progress.add_task("reading labels")
        result = build_training_set(
            settings_from(ctx),
            labels,
            service,
            out,
            source=source,
            via=via,  # type: ignore[arg-type]
            memory_limit=memory_limit,
            progress=lambda step: progress.update(task, description=step),
        )
    click.echo(f"{result.rows:,} rows x {len(result.columns)} columns written to {result.path}")
    if via == "both":
        click.echo(f"recompute and Feast agree on all {result.compared:,} feature values")


@backtest.command("run")
@click.option("--model", "models", multiple=True, metavar="NAME:VERSION", help="A registered version; repeat it.")
@click.option("--from", "start", default=None, metavar="TIME", help="Event-time start, ISO 8601 (naive = UTC).")
@click.option("--to", "end", default=None, metavar="TIME", help="Event-time end (exclusive), ISO 8601.")
@click.option("--speed", default="max", show_default=True, help="max, realtime, or a factor of real time like 60x.")
@click.option(
    "--topic",
    "topic_list",
    multiple=True,
    help="Topics to replay (decoded by their schema header) [default: those of the sources the decision reads].",
)
@click.option("--features", "service", default=None, metavar="SERVICE",
              help="The decision service (checked against the versions' own) [default: the versions'].")  # fmt: skip
@click.option("--fp-cost", type=float, default=1.0, show_default=True, help="Cost of flagging a negative event.")
@click.option("--fn-cost", type=float, default=20.0, show_default=True, help="Cost of missing a positive one.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None, help="Report folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON summary instead of the tables.")
@click.option("--workers", type=click.IntRange(min=1, max=64), default=1, show_default=True,
              help="Processes holding the window state, split by entity (same result for any number).")  # fmt: skip
@click.option("--models-topic", default=topics.MODELS, show_default=True, help="The model registry topic.")
@click.pass_context
def run(
    ctx: click.Context,
    models: tuple[str, ...],
    start: str | None,
    end: str | None,
    speed: str,
    topic_list: tuple[str, ...],
    service: str | None,
    fp_cost: float,
    fn_cost: float,
    out: Path | None,
    as_json: bool,
    workers: int,
    models_topic: str,
) -> None:
    """Replay a range, recompute features as of each scored event, score every version on identical inputs."""
    import json

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from livectx.cli.common import console
    from livectx.errors import LivectxError
    from livectx_backtest.report import print_summary, write_report
    from livectx_backtest.run import BacktestSpec, parse_time, run_backtest, speed_factor

    if not models:
        raise LivectxError("give at least one --model NAME:VERSION to backtest")
    speed_factor(speed)
    spec = BacktestSpec(
        models=models, start=parse_time(start, "--from"), end=parse_time(end, "--to"), topics=topic_list,
        features=service, speed=speed, fp_cost=fp_cost, fn_cost=fn_cost, models_topic=models_topic, workers=workers,
    )  # fmt: skip
    columns = (TextColumn("replaying"), BarColumn(), MofNCompleteColumn(), _rate_column(), TimeRemainingColumn())
    with Progress(*columns, console=console(stderr=True), transient=True) as bar:
        task = bar.add_task("replay", total=None)
        result = run_backtest(
            settings_from(ctx), spec, lambda done, total: bar.update(task, completed=done, total=total)
        )
    folder = out or Path("backtest-results") / "_vs_".join(m.replace(":", "-") for m in models)
    paths = write_report(result, folder)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
        return
    print_summary(result)
    click.echo(
        f"{result.summary['events']['records']:,} records in {result.timing['seconds']:.1f} s "
        f"({result.timing['events_per_s']:,.0f} events/s); report: {paths['markdown']}, JSON: {paths['json']}"
    )


def _rate_column() -> object:
    """A progress column: events/s over rich's sliding window (blank until it has a rate)."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task: object) -> Text:
            speed = getattr(task, "speed", None)
            return Text("" if speed is None else f"{speed:,.0f} events/s")

    return Rate()


@backtest.command("shadow")
@click.option("--model", "model", required=True, metavar="NAME:VERSION", help="The candidate version.")
@click.option("--live-model", default=None, metavar="NAME", help="Compare only with live decisions of this model.")
@click.option("--group", default="livectx-shadow", show_default=True, help="The shadow's own consumer group.")
@click.option("--until-caught-up", is_flag=True, help="Stop at the end offsets seen at start.")
@click.option("--topic", default=None, help="The scored events' topic [default: the decision's source topic].")
@click.option("--decisions-topic", default=topics.DECISIONS, show_default=True)
@click.option("--models-topic", default=topics.MODELS, show_default=True, help="The model registry topic.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def shadow(
    ctx: click.Context,
    model: str,
    live_model: str | None,
    group: str,
    until_caught_up: bool,
    topic: str | None,
    decisions_topic: str,
    models_topic: str,
    as_json: bool,
) -> None:
    """Run a candidate beside the live agent on the live stream; report agreement, never act."""
    import json

    from livectx.cli.common import print_table, progress
    from livectx_backtest.shadow import run_shadow

    with progress(
        "shadowing...",
        lambda r: f"shadowing: {r.scored:,} scored events, {r.compared:,} compared, agreement {r.agreement or 0:.3f}",
    ) as on_progress:
        report = run_shadow(
            settings_from(ctx), model, live_model=live_model, group=group, topic=topic,
            decisions_topic=decisions_topic, models_topic=models_topic, until_caught_up=until_caught_up,
            progress=on_progress,
        )  # fmt: skip
    data = report.to_json()
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    live, cand, delta = data["live"], data["candidate_metrics"], data["delta"]
    print_table(
        f"shadow {data['candidate']} vs live: {data['compared']:,} scored events compared, agreement "
        f"{'n/a' if data['agreement'] is None else format(data['agreement'], '.4f')}"
        + ("" if data["labelled"] else " (no label declared: not judged)"),
        ["figure", "live", data["candidate"], "delta"],
        [(k, f"{live[k]:.4f}", f"{cand[k]:.4f}", f"{delta[k]:+.4f}") for k in live],
    )
    for e in data["examples"]:
        label = f" label={e['label']}" if "label" in e else ""
        click.echo(f"differs: {e['id']} (entity {e['entity']}){label}: live {e['live']}, candidate {e['candidate']}")
