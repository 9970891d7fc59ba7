"""The LangGraph agent: observe, prompt, call the model, parse, repair with the reason."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from maro.agents.llm import CompleteFn, ModelSettings, complete
from maro.arena.engine import InvalidAction, game_class
from maro.arena.messages import BehaviorReport, Submission, TurnPrompt


@dataclass(frozen=True)
class AgentContext:
    """Run settings, passed as LangGraph context rather than stored in state."""

    settings: ModelSettings = field(default_factory=ModelSettings)
    retry_budget: int = 1
    """Local repairs after the first unparseable reply, before the raw text goes to the arena."""
    complete: CompleteFn = complete


class AgentState(TypedDict, total=False):
    game_id: str
    view: dict[str, Any]
    legal_actions: list[str]
    rejection: str | None  # the arena's reason for refusing the previous attempt
    previous: str  # the text that attempt sent
    messages: list[dict]
    completion: str
    logprobs: tuple
    model: str
    action: str
    error: str | None
    repairs: int
    prompt_tokens: int
    completion_tokens: int


def _repair_turn(previous: str, reason: str) -> list[dict]:
    return [
        {"role": "assistant", "content": previous},
        {"role": "user", "content": f"That action was refused: {reason}. Reply with one valid action only."},
    ]


def build_prompt(state: AgentState) -> dict:
    messages = game_class(state["game_id"]).render_prompt(state["view"], state["legal_actions"])
    if state.get("rejection"):
        messages += _repair_turn(state.get("previous", ""), state["rejection"])
    return {"messages": messages, "repairs": 0, "prompt_tokens": 0, "completion_tokens": 0}


async def call_model(state: AgentState, runtime: Runtime[AgentContext]) -> dict:
    ctx = runtime.context
    result = await ctx.complete(state["messages"], ctx.settings)
    return {
        "completion": result.text, "logprobs": result.logprobs, "model": result.model,
        "prompt_tokens": state.get("prompt_tokens", 0) + result.prompt_tokens,
        "completion_tokens": state.get("completion_tokens", 0) + result.completion_tokens,
    }


def parse(state: AgentState) -> dict:
    try:
        return {"action": game_class(state["game_id"]).check_text(state["view"], state["completion"]), "error": None}
    except InvalidAction as exc:
        return {"action": state["completion"], "error": exc.reason}


def repair(state: AgentState) -> dict:
    messages = state["messages"] + _repair_turn(state["completion"], state["error"])
    return {"messages": messages, "repairs": state.get("repairs", 0) + 1}


def route_after_parse(state: AgentState, runtime: Runtime[AgentContext]) -> str:
    if state.get("error") and state.get("repairs", 0) < runtime.context.retry_budget:
        return "repair"
    return END


def build_agent(checkpointer: Any = None):
    """The compiled agent graph; invoke with game_id, view and legal_actions, and an AgentContext."""
    graph = StateGraph(AgentState, context_schema=AgentContext)
    graph.add_node("build_prompt", build_prompt)
    graph.add_node("call_model", call_model)
    graph.add_node("parse", parse)
    graph.add_node("repair", repair)
    graph.add_edge(START, "build_prompt")
    graph.add_edge("build_prompt", "call_model")
    graph.add_edge("call_model", "parse")
    graph.add_conditional_edges("parse", route_after_parse, ["repair", END])
    graph.add_edge("repair", "call_model")
    return graph.compile(checkpointer=checkpointer)


class AgentPlayer:
    """Seats the agent graph in a match (the `Player` of agents.client); keeps token accounting."""

    def __init__(self, game_id: str, context: AgentContext, graph: Any = None):
        self.game_id, self.context = game_id, context
        self.graph = graph or build_agent()
        self.previous = ""
        self.prompt_tokens = self.completion_tokens = self.calls = self.local_repairs = 0

    async def act(self, prompt: TurnPrompt, rejection: str | None) -> Submission:
        state = await self.graph.ainvoke(
            {"game_id": self.game_id, "view": prompt.observation.view, "legal_actions": list(prompt.legal_actions),
             "rejection": rejection, "previous": self.previous},
            context=self.context,
        )
        self.previous = state["completion"]
        self.prompt_tokens += state["prompt_tokens"]
        self.completion_tokens += state["completion_tokens"]
        self.calls += 1 + state["repairs"]
        self.local_repairs += state["repairs"]
        behavior = BehaviorReport(messages=state["messages"], completion=state["completion"],
                                  logprobs=tuple(state["logprobs"]), model=state["model"])
        return Submission(prompt.turn, state["action"], behavior)
