"""``livectx stack up | down | status | logs``."""

from __future__ import annotations

import contextlib
import json
import subprocess

import click

from livectx.cli.common import console, print_table, settings_from, styled

KAFKA_NODES = ["kafka", *(f"kafka-{n}" for n in range(2, 6))]  # `kafka` = every node in up/down
SERVICES = click.Choice([*KAFKA_NODES, "redis", "postgres", "schema-registry", "prometheus", "connect"])
EXTRAS = click.Choice(["monitoring", "cdc"])


def _monitoring(services: tuple[str, ...], extras: tuple[str, ...] = ()) -> bool | None:
    """Prometheus is in the stack when asked for (``--with monitoring`` or by name), else per the settings."""
    return True if "monitoring" in extras or "prometheus" in services else None


def _cdc(services: tuple[str, ...], extras: tuple[str, ...] = ()) -> bool | None:
    """Kafka Connect is in the stack when asked for (``--with cdc`` or by name), else per the settings."""
    return True if "cdc" in extras or "connect" in services else None


@click.group()
def stack() -> None:
    """Run the local stack: a real Apache Kafka (KRaft) broker, Redis, Postgres + pgvector and an Apicurio schema
    registry, on 127.0.0.1; optionally Prometheus (--with monitoring)."""


@stack.command()
@click.argument("services", nargs=-1, type=SERVICES)
@click.option(
    "--with",
    "extras",
    multiple=True,
    type=EXTRAS,
    help="Also start optional services: monitoring = Prometheus scraping the workers (LIVECTX_STACK_MONITORING=1); "
    "cdc = Kafka Connect with Debezium's Postgres connector (LIVECTX_STACK_CDC=1).",
)
@click.option(
    "--secure",
    is_flag=True,
    help="The secured stack (same as LIVECTX_STACK_SECURE=1, which every later command needs too): Kafka "
    "SASL_SSL + ACLs, Redis ACL users, Postgres SCRAM. A state dir is either plain or secured.",
)
@click.option(
    "--brokers",
    type=click.IntRange(1, 5),
    help="Kafka nodes (LIVECTX_STACK_KAFKA_BROKERS, default 1): 3 gives a KRaft quorum of three with "
    "replication 3 and min.insync.replicas 2; node n uses the Kafka ports + 2(n-1).",
)
@click.option(
    "--redis-cluster",
    "redis_cluster",
    type=click.IntRange(3, 16),
    default=None,
    metavar="N",
    help="Run the online store as a Redis Cluster of N masters (3-16) on the Redis port and the N-1 after it "
    "(same as LIVECTX_STACK_REDIS_CLUSTER_NODES=N, which every later command needs too).",
)
@click.pass_context
def up(
    ctx: click.Context,
    services: tuple[str, ...],
    extras: tuple[str, ...],
    secure: bool,
    brokers: int | None,
    redis_cluster: int | None,
) -> None:
    """Start the stack (or just SERVICES) and wait until every service answers its probe. Idempotent."""
    import os

    from livectx.stack.manager import Stack

    if secure and not settings_from(ctx).stack.secure:
        os.environ["LIVECTX_STACK_SECURE"] = "1"
        ctx.find_root().obj.pop("settings", None)
        click.echo("secured stack: export LIVECTX_STACK_SECURE=1 for the commands that use it", err=True)
    if brokers is not None and brokers != settings_from(ctx).stack.kafka_brokers:
        os.environ["LIVECTX_STACK_KAFKA_BROKERS"] = str(brokers)
        ctx.find_root().obj.pop("settings", None)
        click.echo(f"export LIVECTX_STACK_KAFKA_BROKERS={brokers} for the commands that use it", err=True)
    if redis_cluster is not None and settings_from(ctx).stack.redis_cluster_nodes != redis_cluster:
        os.environ["LIVECTX_STACK_REDIS_CLUSTER_NODES"] = str(redis_cluster)
        ctx.find_root().obj.pop("settings", None)
        click.echo(
            f"Redis Cluster: export LIVECTX_STACK_REDIS_CLUSTER_NODES={redis_cluster} for the commands that use it",
            err=True,
        )
    settings = settings_from(ctx)
    if settings.stack.secure and settings.stack.kafka_brokers > 1:
        raise click.UsageError("the secured stack runs one Kafka node: drop --brokers or --secure")
    from livectx.stack.kafka import KafkaBroker
    from livectx.stack.secure import check_mode

    check_mode(settings, (KafkaBroker(settings).data_dir / "meta.properties").exists())  # before any probe waits
    monitoring, cdc = _monitoring(services, extras), _cdc(services, extras)
    with console().status("starting the stack (first run fetches Kafka and Apicurio Registry from Maven Central)..."):
        actions = Stack(settings, monitoring=monitoring, cdc=cdc).up(list(services) or None)
    for name, action in actions:
        click.echo(f"{name}: {action}")
    _print_rows(Stack(settings, monitoring=monitoring, cdc=cdc).status())


@stack.command()
@click.argument("services", nargs=-1, type=SERVICES)
@click.option(
    "--purge",
    is_flag=True,
    help="Also delete the stack's data (Kafka log, Redis snapshot, Postgres data, registry schemas, Prometheus TSDB).",
)
@click.pass_context
def down(ctx: click.Context, services: tuple[str, ...], purge: bool) -> None:
    """Stop the processes `stack up` started (found by PID file); never touches other processes."""
    import shutil

    from livectx.stack.manager import Stack

    settings = settings_from(ctx)
    the_stack = Stack(settings, monitoring=_monitoring(services), cdc=_cdc(services))
    for name, action in the_stack.down(list(services) or None):
        click.echo(f"{name}: {action}")
    if purge:
        for service in the_stack.services:
            if not services or service.name in services:
                shutil.rmtree(settings.stack.state_dir / service.name, ignore_errors=True)
        if not services or "kafka" in services:  # every node's data, also of a larger cluster than configured
            for node_home in settings.stack.state_dir.glob("kafka-[0-9]"):
                shutil.rmtree(node_home, ignore_errors=True)
        click.echo("purged stack data")


@stack.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Each service's address, PID and health. Exit code 1 if any service is not healthy."""
    from livectx.stack.manager import Stack

    rows = Stack(settings_from(ctx)).status()
    if as_json:
        click.echo(json.dumps([row.__dict__ for row in rows], indent=2))
    else:
        _print_rows(rows)
    if not all(row.ok for row in rows):
        ctx.exit(1)


@stack.command()
@click.argument("service", type=SERVICES)
@click.option("-n", "--lines", default=50, show_default=True, help="How many lines to show.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines (Ctrl-C to stop).")
@click.pass_context
def logs(ctx: click.Context, service: str, lines: int, follow: bool) -> None:
    """Show a service's log."""
    from livectx.stack.manager import Stack

    the_stack = Stack(settings_from(ctx), monitoring=_monitoring((service,)), cdc=_cdc((service,)))
    log_file = the_stack.service(service).process.log_file
    if not log_file.exists():
        raise click.ClickException(f"no log yet at {log_file}: run `livectx stack up`")
    cmd = ["tail", "-n", str(lines), *(["-F"] if follow else []), str(log_file)]
    with contextlib.suppress(KeyboardInterrupt):
        subprocess.run(cmd, check=False)


def _print_rows(rows) -> None:  # type: ignore[no-untyped-def]
    colour = {"healthy": "green", "external": "cyan", "unhealthy": "red", "stopped": "yellow"}
    print_table(
        "livectx stack",
        ["service", "address", "pid", "health", "detail", "log"],
        [(r.name, r.address, r.pid or "-", styled(r.health, colour[r.health]), r.detail, r.log_file) for r in rows],
    )
