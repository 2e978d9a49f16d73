"""``livectx agents run fraud|router`` and ``agents ask``: the example domain's agents (payments scoring, ticket
routing, a support assistant).

These belong to the example repo (``feature_repo/``): they name its topics, sources and features. The
product never imports them; the CLI finds them through the ``livectx.commands`` entry point ``agents``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from livectx.cli.common import settings_from


@click.group()
def agents() -> None:
    """Example agents that run on the live stream: fraud scoring and ticket routing."""


@agents.group("run")
def run_agent() -> None:
    """Run an agent in the foreground (Ctrl-C or SIGTERM stops it after its current transaction)."""


def _agent_options(group: str, source_topic: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """The options every agent takes: its consumer group, worker id, topics and --until-caught-up."""

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        for option in reversed(
            [
                click.option("--group", "consumer_group", default=group, show_default=True, help="Consumer group."),
                click.option(
                    "--worker-id",
                    default="0",
                    show_default=True,
                    help="Unique per process: names its transactional id.",
                ),
                click.option("--source-topic", default=source_topic, show_default=True),
                click.option("--decisions-topic", default="livectx.decisions", show_default=True),
                click.option(
                    "--until-caught-up",
                    is_flag=True,
                    help="Stop once the group committed the end offsets present at start.",
                ),
                click.option(
                    "--metrics-port",
                    type=click.IntRange(0, 65535),
                    default=0,
                    show_default=True,
                    help="Serve Prometheus metrics at http://127.0.0.1:PORT/metrics (0: none).",
                ),
            ]
        ):
            command = option(command)
        return command

    return decorate


@contextlib.contextmanager
def _metrics_endpoint(ctx: click.Context, job: str, group: str, worker_id: str, port: int) -> Iterator[None]:
    """``/metrics`` on ``port`` (0: none) and its file_sd target file while the agent runs, like the workers'."""
    from livectx.prometheus import serve_metrics
    from livectx.prometheus_targets import registered_target

    server = serve_metrics(port)  # a daemon thread: it ends with the agent's process
    labels = {"job": job, "consumer_group": group, "worker_id": worker_id}
    with registered_target(settings_from(ctx), f"{job}-{group}-{worker_id}", server and server.server_port, labels):
        yield


def _run_with_metrics(
    ctx: click.Context, job: str, run: Callable[..., Any], options: dict[str, Any], **own: Any
) -> Any:
    """``run`` (``run_router``, ``run_fraud_agent``) with the options every agent takes (see
    :func:`_agent_options`: passed through as they are, but ``--metrics-port``) and the agent's ``own``,
    serving ``/metrics`` while it runs. One place, so that an option added for every agent reaches each."""
    metrics_port = options.pop("metrics_port")
    with _metrics_endpoint(ctx, job, options["consumer_group"], options["worker_id"], metrics_port):
        return run(settings_from(ctx), **options, **own)


@run_agent.command()
@_agent_options("livectx-router", "livectx.tickets")
@click.option(
    "--notifications",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where notifications are appended [default: <data dir>/notifications/router.jsonl].",
)
@click.option(
    "--budget-ms",
    type=click.FloatRange(min=1),
    default=500.0,
    show_default=True,
    help="Latency budget of each ticket's context call; over it, the ticket goes to the fallback queue.",
)
@click.pass_context
def router(ctx: click.Context, notifications: Path | None, budget_ms: float, **options: Any) -> None:
    """Route each new ticket by its most similar past tickets; notify the department exactly once."""
    from livectx.cli.common import print_table
    from livectx_agents.example_router import run_router

    router_agent, stats = _run_with_metrics(
        ctx, "livectx-agent-router", run_router, options, notifications=notifications, budget_ms=budget_ms
    )
    rows = [("tickets consumed", stats.consumed), ("notifications sent", router_agent.notified)]
    rows += [(f"routed to {dept}", n) for dept, n in sorted(router_agent.routed.items())]
    print_table("router agent", ["figure", "value"], rows)


@run_agent.command()
@_agent_options("livectx-fraud", "livectx.transactions")
@click.option(
    "--model",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A trained classifier (joblib) over the fraud features [default: the card-testing rules].",
)
@click.option(
    "--model-name",
    default=None,
    help="Follow this registered model's active version live (`livectx models register`); "
    "the card-testing rules decide while it has none.",
)
@click.option("--models-topic", default="livectx.models", show_default=True, help="The model registry topic.")
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1),
    default=0.5,
    show_default=True,
    help="Decline at or above (a registered version's config `threshold` overrides it).",
)
@click.pass_context
def fraud(
    ctx: click.Context, model: Path | None, model_name: str | None, models_topic: str, threshold: float, **options: Any
) -> None:
    """Approve or decline each payment from its user's streaming features; report precision/recall.

    With --model-name the agent switches to each newly activated version without a restart, and falls
    back to the rules when the model is retired; each decision records the version that made it."""
    from livectx.cli.common import print_table
    from livectx_agents.example_fraud import run_fraud_agent

    agent, _loop_stats = _run_with_metrics(
        ctx,
        "livectx-agent-fraud",
        run_fraud_agent,
        options,
        model=model,
        model_name=model_name,
        models_topic=models_topic,
        threshold=threshold,
    )
    s = agent.stats
    print_table(
        f"fraud agent ({agent.scorer.name})",
        ["figure", "value"],
        [
            ("payments decided", s.decided),
            ("declined", s.declined),
            ("decided on a degraded context", s.degraded),
            ("precision (vs is_fraud labels)", f"{s.precision:.3f}"),
            ("recall (vs is_fraud labels)", f"{s.recall:.3f}"),
            ("true / false positives", f"{s.tp} / {s.fp}"),
        ],
    )


@agents.command("ask")
@click.argument("question")
@click.option("--user", "user_id", required=True, help="The asking user's id (their risk features are checked).")
@click.option("--model", default=None, help="Model name for the OpenAI Agents SDK [default: $LIVECTX_LLM_MODEL].")
@click.option("--budget-ms", type=click.FloatRange(min=1), default=500.0, show_default=True)
@click.pass_context
def ask(ctx: click.Context, question: str, user_id: str, model: str | None, budget_ms: float) -> None:
    """Ask the example support assistant (an LLM agent using livectx's tools; needs a model endpoint)."""
    from livectx_agents.context import ContextClient, ContextConfig
    from livectx_agents.example_support_assistant import ask as ask_agent
    from livectx_agents.example_support_assistant import support_assistant
    from livectx_agents.tools.context_tools import ContextTools

    client = ContextClient.from_settings(settings_from(ctx), ContextConfig(budget_ms=budget_ms))
    try:
        click.echo(ask_agent(support_assistant(ContextTools.from_repo(client), model), question, user_id))
    finally:
        client.close()
