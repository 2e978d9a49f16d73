"""livectx's tools through the agent frameworks' own invocation paths: the OpenAI Agents SDK's Runner driving
function tools, LangChain's tool invocation, and the example's support assistant.

No model can be reached here: ``ScriptedModel`` is a stand-in for an LLM (an SDK ``Model`` that issues
scripted tool calls, then answers from what the tools returned). The tools read injected parts (no
services): the point is the frameworks' paths, the context itself is tested elsewhere.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from livectx_agents.context import ContextClient
from livectx_agents.tools.context_tools import ContextTools

from livectx.vectors.records import SearchHit
from tests.example import REPO

SERVICE = "fraud_features"
HIT = SearchHit("tickets:7", 0.93, "Card declined twice at checkout, bank says fine", "support_ticket", "t1",
                "billing", 1)  # fmt: skip


def _read(entities: list[str], _service: str) -> dict[str, list[Any]]:
    rows: dict[str, list[Any]] = {}
    for group in REPO.service_groups(SERVICE):
        rows[group.event_time_field] = [1_000] * len(entities)
        rows.update({f.name: [9 if f.name == "txn_count_5m" else 0] * len(entities) for f in group.features})
    return rows


@pytest.fixture
def tools():  # type: ignore[no-untyped-def]
    client = ContextClient(
        _read, lambda *_a: [HIT], lambda _t: np.zeros(3), services={SERVICE: REPO.service_groups(SERVICE)},
        memory_sources={"tickets_memory": "support_ticket"},
    )  # fmt: skip
    yield ContextTools(client, {SERVICE: "What the fraud agent reads."})
    client.close()


class ScriptedModel:
    """A stand-in for an LLM (named as such): each turn runs the next step of a script, a function from the
    input items so far to output items (tool calls, or a final message)."""

    def __init__(self, steps: list[Callable[[list[dict[str, Any]]], list[Any]]]) -> None:
        from agents.models.interface import Model

        outer = self

        class _Model(Model):
            async def get_response(self, system_instructions, input, *_args, **_kwargs):  # type: ignore[no-untyped-def]
                from agents.usage import Usage

                from agents import ModelResponse

                outer.instructions.append(system_instructions)
                items = [dict(i) for i in input] if isinstance(input, list) else [{"role": "user", "content": input}]
                return ModelResponse(output=outer.steps.pop(0)(items), usage=Usage(), response_id=None)

            def stream_response(self, *_args, **_kwargs):  # type: ignore[no-untyped-def]
                raise NotImplementedError

        self.steps = steps
        self.instructions: list[str | None] = []
        self.model = _Model()


def _call(name: str, arguments: dict[str, Any], call_id: str) -> Any:
    from openai.types.responses import ResponseFunctionToolCall

    return ResponseFunctionToolCall(type="function_call", name=name, arguments=json.dumps(arguments), call_id=call_id)


def _say(text: str) -> Any:
    from openai.types.responses import ResponseOutputMessage, ResponseOutputText

    content = [ResponseOutputText(type="output_text", text=text, annotations=[])]
    return ResponseOutputMessage(type="message", id="m", role="assistant", status="completed", content=content)


def _outputs(items: list[dict[str, Any]]) -> dict[str, str]:
    return {i["call_id"]: i["output"] for i in items if i.get("type") == "function_call_output"}


def test_openai_agents_function_tools_have_the_mcp_schemas_and_run_through_the_runner(tools) -> None:  # type: ignore[no-untyped-def]
    from livectx_agents.tools.openai_agents import function_tools

    from agents import Agent, RunConfig, Runner

    function = function_tools(tools)
    assert [t.name for t in function] == [
        "get_context", "search_memory", "get_features", "list_feature_services", "wait_until_fresh",
    ]  # fmt: skip
    schema = next(t for t in function if t.name == "get_context").params_json_schema
    assert schema["properties"]["budget_ms"]["anyOf"][0]["exclusiveMinimum"] == 0
    assert "latency budget" in next(t for t in function if t.name == "get_context").description

    model = ScriptedModel([
        lambda _items: [_call("get_context", {"entities": ["u1"], "query": "declined", "budget_ms": 500}, "c1"),
                        _call("get_features", {"entities": []}, "c2")],
        lambda items: [_say(json.dumps(_outputs(items)))],
    ])  # fmt: skip
    agent = Agent(name="probe", instructions="use the tools", tools=function, model=model.model)
    result = Runner.run_sync(agent, "what about u1?", run_config=RunConfig(tracing_disabled=True))
    outputs = json.loads(result.final_output)
    context = json.loads(outputs["c1"])  # JSON text for the model
    assert context["features"]["u1"]["txn_count_5m"] == 9 and context["similar"][0]["id"] == "tickets:7"
    # a bad call reaches the model as the tool's output, naming what was wrong
    assert "give at least one entity id" in outputs["c2"]


def test_langchain_tools_invoke_and_return_errors_to_the_model(tools) -> None:  # type: ignore[no-untyped-def]
    from livectx_agents.tools.langchain import langchain_tools

    lc = {t.name: t for t in langchain_tools(tools)}
    features = lc["get_features"].invoke({"entities": ["u1"], "feature_service": SERVICE})
    assert features["features"]["u1"]["txn_count_5m"] == 9 and features["degraded"] == []
    assert lc["list_feature_services"].invoke({})["memory_views"] == ["tickets_memory"]
    assert "unknown memory view 'nope'" in lc["search_memory"].invoke({"query": "x", "memory_view": "nope"})
    # validation, as one line of text
    assert (
        lc["search_memory"].invoke({"query": "x", "top_k": 0})
        == "error: top_k: Input should be greater than or equal to 1"
    )
    assert set(lc["get_context"].args) >= {"entities", "query", "budget_ms"}


def test_the_support_assistant_answers_from_memory_and_risk_features(tools) -> None:  # type: ignore[no-untyped-def]
    from livectx_agents.example_support_assistant import INSTRUCTIONS, ask, support_assistant

    def plan(items: list[dict[str, Any]]) -> list[Any]:
        question = items[0]["content"]
        return [_call("search_memory", {"query": question, "memory_view": "tickets_memory"}, "m"),
                _call("get_features", {"entities": ["u42"], "feature_service": SERVICE}, "f")]  # fmt: skip

    def answer(items: list[dict[str, Any]]) -> list[Any]:
        outputs = _outputs(items)
        memory, features = json.loads(outputs["m"]), json.loads(outputs["f"])
        count = features["features"]["u42"]["txn_count_5m"]
        return [_say(f"Similar case: {memory['similar'][0]['text']}. {count} payments in 5 minutes: fraud team.")]

    model = ScriptedModel([plan, answer])
    reply = ask(support_assistant(tools, model.model), "my card was declined twice", "u42")
    assert (
        reply == "Similar case: Card declined twice at checkout, bank says fine. 9 payments in 5 minutes: fraud team."
    )
    assert model.instructions[0] == INSTRUCTIONS
