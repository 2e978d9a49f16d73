"""The context tools as OpenAI Agents SDK function tools (``pip install 'livectx[frameworks]'``).

``function_tools(tools)`` gives one ``FunctionTool`` per :class:`~.context_tools.ContextTools` method, with
the same JSON schema the MCP server publishes; the SDK runs them as it runs any function tool. Results go
to the model as JSON text (the SDK would otherwise hand it a Python repr). A livectx error, or arguments
that fail validation, reach the model as the tool's output with their one-line message, so it can correct
its call; any other failure gets the SDK's generic message (its text stays out of the model's context). The
blocking calls run in a worker thread, off the agent's event loop.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
from typing import Any

from pydantic import ValidationError

from livectx.errors import LivectxError
from livectx_agents.tools.context_tools import ContextTools


def function_tools(tools: ContextTools) -> list[Any]:
    from agents import function_tool

    return [
        function_tool(
            _in_thread(tool),
            name_override=tool.__name__,
            description_override=inspect.getdoc(tool),
            use_docstring_info=False,
            strict_mode=False,  # optional parameters with defaults; strict schemas require every field
            failure_error_function=_error_text,
        )
        for tool in tools.tools()
    ]


def _in_thread(fn: Any) -> Any:
    @functools.wraps(fn)
    async def call(*args: Any, **kwargs: Any) -> str:
        return json.dumps(await asyncio.to_thread(fn, *args, **kwargs), default=str)

    return call


def _error_text(_ctx: Any, error: Exception) -> str:
    from agents.exceptions import ModelBehaviorError
    from agents.tool import default_tool_error_function

    if isinstance(error, LivectxError | ModelBehaviorError | ValidationError):
        return f"error: {error}"
    return default_tool_error_function(_ctx, error)
