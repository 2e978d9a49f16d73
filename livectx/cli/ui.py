"""``livectx ui``: the live web dashboard (see :mod:`livectx.ui`)."""

from __future__ import annotations

import click

from livectx.cli.common import settings_from


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8090, show_default=True)
@click.option(
    "--interval", "interval_s", type=click.FloatRange(0.2, 60), default=2.0, show_default=True,
    help="Seconds between refreshes of every part (metrics scrapes, offsets, dead letters, registry).",
)  # fmt: skip
@click.option("--dead-letter-topic", default=None, help="[default: LIVECTX_KAFKA_DEAD_LETTER_TOPIC]")
@click.option("--models-topic", default="livectx.models", show_default=True, help="The model registry topic.")
@click.pass_context
def ui(
    ctx: click.Context, host: str, port: int, interval_s: float, dead_letter_topic: str | None, models_topic: str
) -> None:
    """Serve the dashboard at http://HOST:PORT/: pipelines and lag, freshness charts, dead letters, the
    vector watermark, an entity inspector, and model versions with the agents using them."""
    import uvicorn

    from livectx.ui.app import create_app

    settings = settings_from(ctx)
    _check_free(host, port)
    click.echo(f"livectx dashboard at http://{host}:{port}/", err=True)
    app = create_app(settings, interval_s=interval_s, dead_letter_topic=dead_letter_topic, models_topic=models_topic)
    uvicorn.run(app, host=host, port=port, log_level="warning")


def _check_free(host: str, port: int) -> None:
    """One readable line for a port already taken (uvicorn would exit 3 after its own log line)."""
    import socket

    from livectx.errors import LivectxError

    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise LivectxError(
                f"cannot serve the dashboard on {host}:{port} ({exc.strerror}): pick another --port"
            ) from None
