"""The context tools as LangChain tools (``pip install 'livectx[frameworks]'``).

``langchain_tools(tools)`` gives one ``StructuredTool`` per :class:`~.context_tools.ContextTools` method,
its args schema the method's signature. A livectx error or an argument that fails validation is returned
to the model as the tool's output (LangChain's ``handle_tool_error`` / ``handle_validation_error``) rather
than raised into the agent loop.
"""

from __future__ import annotations

import inspect
from typing import Any

from livectx_agents.tools.context_tools import ContextTools, livectx_errors_as


def langchain_tools(tools: ContextTools) -> list[Any]:
    from langchain_core.tools import StructuredTool

    return [
        StructuredTool.from_function(
            func=_tool_errors(tool),
            name=tool.__name__,
            description=inspect.getdoc(tool) or tool.__name__,
            handle_tool_error=True,
            handle_validation_error=_validation_text,
        )
        for tool in tools.tools()
    ]


def _tool_errors(fn: Any) -> Any:
    from langchain_core.tools import ToolException

    return livectx_errors_as(ToolException, fn)


def _validation_text(error: Exception) -> str:
    """A validation error as one line for the model: ``top_k: Input should be greater than or equal to 1``."""
    errors = getattr(error, "errors", None)
    if callable(errors):
        return "error: " + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors())
    return f"error: {error}"
