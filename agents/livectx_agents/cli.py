"""``livectx serve``: the context API over HTTP."""

from __future__ import annotations

import click

from livectx.cli.common import settings_from


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8088, show_default=True)
@click.option("--budget-ms", type=click.FloatRange(min=1), default=50.0, show_default=True, help="Default budget.")
@click.option("--openapi", is_flag=True, help="Print the OpenAPI document and exit.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, budget_ms: float, openapi: bool) -> None:
    """Serve get_context as JSON over HTTP: POST /v1/context, GET /healthz, /openapi.json, /docs."""
    import json

    from livectx_agents.context import AsyncContextClient, ContextConfig
    from livectx_agents.server import create_app

    settings = settings_from(ctx)
    if openapi:
        click.echo(json.dumps(create_app(settings=settings).openapi(), indent=2))
        return
    import uvicorn

    from livectx.prometheus_targets import registered_target

    auth = _auth(settings, host)
    client = AsyncContextClient.from_settings(settings, ContextConfig(budget_ms=budget_ms))
    labels = {"job": "livectx-serve", "worker_id": str(port)}
    with registered_target(settings, f"serve-{port}", port, labels, host):  # its /metrics, for Prometheus
        uvicorn.run(create_app(client, auth=auth), host=host, port=port, log_level="info")


def _auth(settings, host: str):  # type: ignore[no-untyped-def]
    """The servers' authenticator, or ``None`` (said on stderr) where the settings leave auth off."""
    from livectx_agents.auth import TenantAuth, auth_required

    if auth_required(settings, host):
        return TenantAuth.from_settings(settings)
    click.echo(
        f"authentication off ({host} on the plain local stack, LIVECTX_AUTH_MODE={settings.auth.mode}): "
        "set LIVECTX_AUTH_MODE=required to demand API keys",
        err=True,
    )
    return None


@click.command()
@click.option(
    "--transport",
    type=click.Choice(["stdio", "http"]),
    default="stdio",
    show_default=True,
    help="stdio: a client launches this process; http: streamable HTTP at http://HOST:PORT/mcp.",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8089, show_default=True)
@click.option("--budget-ms", type=click.FloatRange(min=1), default=50.0, show_default=True, help="Default budget.")
@click.pass_context
def mcp(ctx: click.Context, transport: str, host: str, port: int, budget_ms: float) -> None:
    """Serve the context tools over MCP: get_context, search_memory, get_features, list_feature_services,
    wait_until_fresh, and each feature service's schema as a resource."""
    from livectx.prometheus_targets import registered_target
    from livectx_agents.context import ContextClient, ContextConfig
    from livectx_agents.tools.context_tools import ContextTools
    from livectx_agents.tools.mcp_server import serve as serve_mcp

    settings = settings_from(ctx)
    auth = _auth(settings, host) if transport == "http" else None  # stdio: the launching process is the caller
    client = ContextClient.from_settings(settings, ContextConfig(budget_ms=budget_ms))
    client.warm_up()  # before the first call: the model's first pass is paid here
    http_port = port if transport == "http" else None  # the HTTP app serves /metrics; stdio has no port
    labels = {"job": "livectx-mcp", "worker_id": str(port)}
    try:
        with registered_target(settings, f"mcp-{port}", http_port, labels, host):
            serve_mcp(ContextTools.from_repo(client), transport, host, port, auth=auth)
    finally:
        client.close()
