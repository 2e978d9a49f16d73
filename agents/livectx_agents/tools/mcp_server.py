"""``livectx mcp``: the context tools over the Model Context Protocol (stdio or streamable HTTP).

Built on the official ``mcp`` SDK's :class:`~mcp.server.MCPServer`: the tools are
:class:`~livectx_agents.tools.context_tools.ContextTools`' methods (their signatures are the JSON schemas),
and each feature service's schema is also a resource, ``livectx://feature-services/{name}``.

Errors: a bad argument is reported by the SDK's validation as a tool error; a livectx error (an unknown
service, nothing to fetch) becomes a tool error with its one-line message, which the model can read and
act on. Anything else is a crash: the SDK reports it without the exception's text, and it is logged here.
The server warms the client up before it accepts a call (:meth:`ContextClient.warm_up`), so the first
calls do not pay for loading the embedding model.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any

from livectx.errors import LivectxError
from livectx_agents.tools.context_tools import ContextTools

log = logging.getLogger(__name__)
INSTRUCTIONS = (
    "livectx serves real-time context: fresh feature values about entities (users, cards, ...) and a semantic "
    "memory of recent texts, each with how fresh it is. Call list_feature_services first to learn the feature "
    "services and memory views; then get_context for everything about some entities in one call within a "
    "latency budget. Use wait_until_fresh after producing an event when the answer must reflect it."
)


def build_server(tools: ContextTools) -> Any:
    """An ``MCPServer`` with every tool of ``tools`` and the feature-service resources."""
    from mcp.server import MCPServer

    # WARNING: the SDK logs every request at INFO (a log line per tool call, on stderr for stdio)
    server = MCPServer("livectx", instructions=INSTRUCTIONS, log_level="WARNING")
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

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LivectxError as exc:
            raise ToolError(str(exc)) from None
        except Exception:
            log.exception("tool %s crashed", fn.__name__)
            raise

    return call


def serve(tools: ContextTools, transport: str, host: str = "127.0.0.1", port: int = 8089) -> None:
    """Run until interrupted: ``stdio`` (a client launches this process) or ``http`` (streamable HTTP at
    ``http://HOST:PORT/mcp``)."""
    server = build_server(tools)
    if transport == "stdio":
        server.run("stdio")
    else:  # plain JSON responses (no SSE stream per call): about 1 ms less per call here
        server.run("streamable-http", host=host, port=port, json_response=True)
