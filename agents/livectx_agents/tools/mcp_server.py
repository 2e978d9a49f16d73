"""``livectx mcp``: the context tools over the Model Context Protocol (stdio or streamable HTTP).

Built on the official ``mcp`` SDK's :class:`~mcp.server.MCPServer`: the tools are
:class:`~livectx_agents.tools.context_tools.ContextTools`' methods (their signatures are the JSON schemas),
and each feature service's schema is also a resource, ``livectx://feature-services/{name}``.

Errors: a bad argument is reported by the SDK's validation as a tool error; a livectx error (an unknown
service, nothing to fetch) becomes a tool error with its one-line message, which the model can read and
act on. Anything else is a crash: the SDK reports it without the exception's text, and it is logged here.
The server warms the client up before it accepts a call (:meth:`ContextClient.warm_up`), so the first
calls do not pay for loading the embedding model.

With authentication (``auth``, over HTTP), every HTTP request needs an API key (401 before MCP sees it),
and each tool call runs as the key's tenant: the tools' client is wrapped so that every ``get_context``
is scoped to the tenant (:meth:`TenantAuth.scope`); a tenant filter for anyone else is a tool error
with the fixed ``forbidden`` message.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any

from livectx.repo.tenants import TenantSpec
from livectx_agents.auth import TenantAuth, Unauthenticated
from livectx_agents.tools.context_tools import ContextTools, livectx_errors_as

log = logging.getLogger(__name__)
INSTRUCTIONS = (
    "livectx serves real-time context: fresh feature values about entities (users, cards, ...) and a semantic "
    "memory of recent texts, each with how fresh it is. Call list_feature_services first to learn the feature "
    "services and memory views; then get_context for everything about some entities in one call within a "
    "latency budget. Use wait_until_fresh after producing an event when the answer must reflect it."
)


_CALLER: ContextVar[TenantSpec | None] = ContextVar("livectx_mcp_caller", default=None)


def build_server(tools: ContextTools, auth: TenantAuth | None = None) -> Any:
    """An ``MCPServer`` with every tool of ``tools`` and the feature-service resources; with ``auth``, each
    tool call runs scoped to the tenant of the HTTP request's API key."""
    from mcp.server import MCPServer

    server_class = MCPServer
    if auth is not None:
        tools.client = _ScopedClient(tools.client, auth)  # type: ignore[assignment]
        server_class = _tenant_server_class(MCPServer, auth)
    # WARNING: the SDK logs every request at INFO (a log line per tool call, on stderr for stdio)
    server = server_class("livectx", instructions=INSTRUCTIONS, log_level="WARNING")
    for tool in tools.tools():
        server.add_tool(_as_tool_errors(tool), name=tool.__name__, description=inspect.getdoc(tool))

    @server.resource(
        "livectx://feature-services/{name}",
        name="feature-service",
        description="One feature service's schema: entity key, views, windows, features with types.",
        mime_type="application/json",
    )
    def feature_service(name: str) -> dict[str, Any]:
        return tools.feature_service_schema(name)

    @server.custom_route("/metrics", methods=["GET"], include_in_schema=False)
    async def metrics(_request: Any) -> Any:  # over HTTP: the same Prometheus metrics as the other servers
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
        from starlette.responses import Response

        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return server


def _as_tool_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with livectx errors raised as the SDK's ``ToolError`` (their message reaches the model)."""
    from mcp.server.mcpserver.exceptions import ToolError

    return livectx_errors_as(ToolError, fn, crashes=log)


class _ScopedClient:
    """The tools' client, with every ``get_context`` narrowed to the calling tenant (set per tool call)."""

    def __init__(self, client: Any, auth: TenantAuth) -> None:
        self._client = client
        self._auth = auth

    def get_context(self, entities: Sequence[str], feature_service: str | None = None, **kwargs: Any) -> Any:
        tenant = _CALLER.get()
        if tenant is None:  # a tool called outside an authenticated HTTP request
            raise Unauthenticated("authentication required: send Authorization: Bearer <API key>")
        kwargs["filters"] = self._auth.scope(tenant, kwargs.get("filters"), list(entities))
        return self._client.get_context(entities, feature_service, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def _tenant_server_class(base: type, auth: TenantAuth) -> type:
    """``base`` whose tool calls run as the tenant of the HTTP request that carried them."""

    class TenantServer(base):  # type: ignore[misc, valid-type]
        async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
            request = getattr(getattr(context, "request_context", None), "request", None)
            tenant = None
            if request is not None:
                try:
                    tenant = auth.caller(request.headers)
                except Unauthenticated:
                    tenant = None
            token = _CALLER.set(tenant)
            try:
                return await super().call_tool(name, arguments, context)
            finally:
                _CALLER.reset(token)

    return TenantServer


def require_key(app: Any, auth: TenantAuth) -> Any:
    """ASGI middleware: HTTP requests without a valid API key get 401 (``/metrics`` stays open)."""

    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("path") != "/metrics":
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
            try:
                auth.caller(headers)
            except Unauthenticated as exc:
                body = json.dumps({"error": str(exc)}).encode()
                await send({
                    "type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")],
                })  # fmt: skip
                await send({"type": "http.response.body", "body": body})
                return
        await app(scope, receive, send)

    return guarded


def serve(
    tools: ContextTools, transport: str, host: str = "127.0.0.1", port: int = 8089, auth: TenantAuth | None = None
) -> None:
    """Run until interrupted: ``stdio`` (a client launches this process) or ``http`` (streamable HTTP at
    ``http://HOST:PORT/mcp``), behind API keys when ``auth`` is given."""
    server = build_server(tools, auth if transport == "http" else None)
    if transport == "stdio":
        server.run("stdio")
    elif auth is None:  # plain JSON responses (no SSE stream per call): about 1 ms less per call here
        server.run("streamable-http", host=host, port=port, json_response=True)
    else:
        import uvicorn

        app = require_key(server.streamable_http_app(json_response=True, host=host), auth)
        uvicorn.run(app, host=host, port=port, log_level="warning")
