"""The example's LLM-style agent: a support assistant that answers from the semantic memory and checks the
asking user's risk features, through livectx's tools, on the OpenAI Agents SDK.

It belongs to the example repo (it names its memory views and feature service); the product's part is the
tools (:mod:`livectx_agents.tools`). The model is whatever the SDK is given: with ``LIVECTX_LLM_MODEL`` set
(e.g. ``gpt-5-mini``, with ``OPENAI_API_KEY``, or any OpenAI-compatible endpoint via ``OPENAI_BASE_URL``)
a real model decides which tools to call; tests pass a scripted stand-in for the model instead
(``tests/unit/test_agent_framework_tools.py``), since no model can be reached from the test machines.

    livectx agents ask "my card was declined twice" --user u42
"""

from __future__ import annotations

import os
from typing import Any

from livectx.errors import LivectxError
from livectx_agents.tools.context_tools import ContextTools
from livectx_agents.tools.openai_agents import function_tools

MODEL_ENV = "LIVECTX_LLM_MODEL"
INSTRUCTIONS = """You are the support assistant of a payments company. For each question:
1. call search_memory with the question (memory_view "tickets_memory" for past tickets, "documents_memory"
   for help articles) to find what is known about similar cases;
2. call get_features for the asking user with feature_service "fraud_features" to see their recent
   payment activity (txn_count_5m, distinct_ips_10m, login_failures_5m ...);
3. answer in two or three sentences, citing the most similar item, and say so if the user's activity looks
   risky (many payments or IPs in minutes, failed logins): then hand over to the fraud team."""


def support_assistant(tools: ContextTools, model: Any = None) -> Any:
    """The assistant as an SDK ``Agent``; ``model`` is a model name or ``Model`` (default: ``$LIVECTX_LLM_MODEL``)."""
    from agents import Agent

    model = model if model is not None else os.environ.get(MODEL_ENV)
    if model is None:
        raise LivectxError(f"no model for the support assistant: set {MODEL_ENV} (and OPENAI_API_KEY/OPENAI_BASE_URL)")
    return Agent(name="support assistant", instructions=INSTRUCTIONS, tools=function_tools(tools), model=model)


def ask(agent: Any, question: str, user_id: str, max_turns: int = 6) -> str:
    """One question from ``user_id``; the agent's final answer."""
    from agents import RunConfig, Runner

    # The SDK's tracing exports to OpenAI's platform by default: off, as livectx does not send data anywhere.
    config = RunConfig(tracing_disabled=True)
    result = Runner.run_sync(agent, f"User {user_id} asks: {question}", max_turns=max_turns, run_config=config)
    return str(result.final_output)
