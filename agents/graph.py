"""The LangGraph agent: prompt (persona, memory, private thought), call the model, parse, repair with the reason."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from maro.agents.llm import CompleteFn, ModelCallError, ModelSettings, Usage, complete
from maro.arena.engine import GameText, InvalidAction, text_for
from maro.arena.match.messages import BehaviorReport, Submission, TurnPrompt


@dataclass(frozen=True)
class AgentContext:
    """Run settings, passed as LangGraph context rather than stored in state."""

    settings: ModelSettings = field(default_factory=ModelSettings)
    retry_budget: int = 1
    """Local repairs after an unparseable reply (0: no repair loop). When it runs out, the text goes
    to the arena as it is: the arena, which knows the game state, rejects it with the reason (the
    agent repairs from that too) and after its retries plays the game's declared fallback."""
    complete: CompleteFn = complete
    persona: str = ""
    """Who the agent plays as, in the system prompt ("a blunt trader who never bluffs")."""
    think: bool = False
    """Ask for a private `Thought:` before a final `Action:` line; only the action is submitted."""
    think_max_tokens: int = 256
    """The reply's token limit while thinking, when the model settings allow fewer."""
    stop_after_action: bool = False
    """End each reply at the action's closing bracket: the model server stops there and keeps
    the bracket in the text (`stop` with vLLM's `include_stop_str_in_output`, which our local
    server speaks too), so no decode steps go to prose after the action. Not while thinking, and
    only for OpenAI-compatible servers (entries with an api_base): hosted providers lack the flag."""
    text: GameText | None = None
    """The game's text side (checks and prompts from a view). `AgentPlayer` sets it to its game's;
    without it the nodes take the text of the state's `game_id`."""
    memory_tokens: int = 0
    """Budget (estimated tokens) of the agent's notes of the match in the prompt: what it played,
    what it thought, what the arena refused and why. 0 leaves notes out of the prompt: the game's
    view already holds the public record, and self-play prompts stay short."""


ACTION_STOP = ("]",)
"""Where an action in the bracket format ends; `stop_after_action` stops generation there."""


class Note(TypedDict):
    """One entry of the agent's memory of a match."""

    turn: int | None
    kind: str  # said | thought | refused
    text: str


MAX_NOTES = 200


def remember(old: list[Note] | None, new: list[Note] | None) -> list[Note]:
    """The memory channel's reducer: append, keep the newest MAX_NOTES."""
    return ([*(old or []), *(new or [])])[-MAX_NOTES:]


class AgentState(TypedDict, total=False):
    game_id: str | None  # a registered game; None plays from `observation` text alone (TextArena)
    view: dict[str, Any]
    legal_actions: list[str]
    observation: str  # the observation as text, when there is no game_id
    turn: int | None
    rejection: str | None  # the arena's reason for refusing the previous attempt
    previous: str  # the text that attempt sent
    memory: Annotated[list[Note], remember]
    messages: list[dict]
    completion: str
    logprobs: tuple
    model: str
    thought: str
    action: str
    error: str | None
    first_error: str | None  # the first reply's error this turn: None when it was valid as written
    repairs: int
    prompt_tokens: int
    completion_tokens: int


TEXT_RULES = ("You are a player in a text game. Read the game's messages and reply with your next move, exactly "
              "in the format the game asks for, and nothing else.")
THINK_RULES = ("Before you act, think privately: begin your reply with 'Thought:' and a few sentences of reasoning "
               "(no other player ever sees them), then end with one line 'Action: ' followed by exactly one action "
               "in the required format. This replaces the instruction to reply with the action alone.")
_EXAMPLE_THOUGHT = "Thought: I weigh my goal, what has happened so far and the legal actions."
_ACTION_LINE = re.compile(r"^[ \t*_#>-]*action[ \t*_]*:[ \t*_]*(.*)$", re.IGNORECASE | re.MULTILINE)
_THOUGHT_HEAD = re.compile(r"^[ \t*_#>-]*thought[ \t*_]*:[ \t*_]*", re.IGNORECASE | re.MULTILINE)


def split_thought(text: str) -> tuple[str, str | None]:
    """(thought, action) of a thinking reply; the last `Action:` line wins. A reply without either
    section is all action; a thought without an action line gives None."""
    matches = list(_ACTION_LINE.finditer(text or ""))
    if matches:
        last = matches[-1]
        action = last.group(1).strip()
        if not action:  # "Action:" alone on its line, the action on the next
            action = next((line.strip() for line in text[last.end():].splitlines() if line.strip()), "")
        return _THOUGHT_HEAD.sub("", text[:last.start()], count=1).strip(), action
    if _THOUGHT_HEAD.search(text or ""):
        return _THOUGHT_HEAD.sub("", text, count=1).strip(), None
    return "", (text or "").strip()


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate: about four characters per token in English, plus one."""
    return len(text) // 4 + 1


def render_memory(notes: list[Note], budget: int) -> str:
    """The notes that fit in `budget` tokens, newest kept, oldest dropped first (and counted)."""
    header = "Your private notes from this match, oldest first:"
    kept: list[str] = []
    used = estimate_tokens(header) + 12  # room for the line that counts what was left out
    for note in reversed(notes):
        line = "- " + _note_line(note)
        if used + estimate_tokens(line) > budget:
            break
        kept.append(line)
        used += estimate_tokens(line)
    if not kept:
        return ""
    left_out = len(notes) - len(kept)
    lines = [header] + ([f"- ({left_out} earlier notes left out)"] if left_out else []) + kept[::-1]
    return "\n".join(lines)


def _note_line(note: Note) -> str:
    when = f"Turn {note['turn']}: " if note.get("turn") is not None else ""
    text = note["text"] if len(note["text"]) <= 400 else note["text"][:397] + "..."
    return when + {"said": "you played {}", "thought": "you thought: {}", "refused": "refused: {}"}.get(
        note["kind"], "{}").format(text)


def _repair_turn(previous: str, reason: str, think: bool, legal_actions: Sequence[str] = ()) -> list[dict]:
    ask = "End with one line 'Action: ' and one valid action." if think else "Reply with one valid action only."
    legal = f" Legal actions: {'; '.join(legal_actions)}." if legal_actions else ""
    return [
        {"role": "assistant", "content": previous},
        {"role": "user", "content": f"That action was refused: {reason}.{legal} {ask}"},
    ]


def first_prompt(game_id: str, view: Mapping[str, Any], legal_actions: Sequence[str],
                 ctx: AgentContext | None = None) -> list[dict]:
    """The messages a model seat is sent for this view before any note or repair: the game's prompt
    with `ctx`'s persona and think rules (none by default, as in self-play). Warm starts imitate on it."""
    return _with_persona_and_think(text_for(game_id).render_prompt(view, legal_actions), ctx or AgentContext())


def _game_text(state: AgentState, ctx: AgentContext) -> GameText | None:
    """The text side of the game being played: the context's, else the state's game's, else None
    (an observation text without a registered game)."""
    if ctx.text is not None:
        return ctx.text
    return text_for(state["game_id"]) if state.get("game_id") else None


def _base_prompt(state: AgentState, ctx: AgentContext) -> list[dict]:
    if (text := _game_text(state, ctx)) is not None:
        return text.render_prompt(state["view"], state["legal_actions"])
    return [{"role": "system", "content": TEXT_RULES}, {"role": "user", "content": state.get("observation", "")}]


def _with_persona_and_think(messages: list[dict], ctx: AgentContext) -> list[dict]:
    extra = []
    if ctx.persona:
        extra.append(f"Your persona: {ctx.persona}. Play in character, in tone and in anything you say, "
                     "within the rules and the action format.")
    if ctx.think:
        extra.append(THINK_RULES)
    if not extra:
        return messages
    out = [dict(m) for m in messages]
    if out and out[0]["role"] == "system":
        out[0]["content"] = "\n\n".join([out[0]["content"], *extra])
    else:
        out.insert(0, {"role": "system", "content": "\n\n".join(extra)})
    if ctx.think:  # worked examples show the thinking format too: small models copy the example
        for m in out:
            if m["role"] == "assistant":
                m["content"] = f"{_EXAMPLE_THOUGHT}\nAction: {m['content']}"
    return out


def _memory_budget(messages: list[dict], ctx: AgentContext) -> int:
    budget = ctx.memory_tokens
    if ctx.settings.context_tokens:
        prompt = sum(estimate_tokens(m["content"]) + 4 for m in messages)
        budget = min(budget, ctx.settings.context_tokens - prompt - _max_tokens(ctx))
    return budget


def _max_tokens(ctx: AgentContext) -> int:
    return max(ctx.settings.max_tokens, ctx.think_max_tokens) if ctx.think else ctx.settings.max_tokens


def build_prompt(state: AgentState, runtime: Runtime[AgentContext]) -> dict:
    ctx = runtime.context
    messages = _with_persona_and_think(_base_prompt(state, ctx), ctx)
    notes = state.get("memory") or []
    if ctx.memory_tokens > 0 and notes and (block := render_memory(notes, _memory_budget(messages, ctx))):
        last = messages[-1]
        messages[-1] = {**last, "content": f"{block}\n\n{last['content']}"}
    new_notes: list[Note] = []
    if state.get("rejection"):
        messages += _repair_turn(state.get("previous", ""), state["rejection"], ctx.think,
                                 state.get("legal_actions", ()))
        shown = (split_thought(state.get("previous", ""))[1] or "") if ctx.think else state.get("previous", "")
        new_notes.append(Note(turn=state.get("turn"), kind="refused", text=f"{shown!r}: {state['rejection']}"))
    return {"messages": messages, "repairs": 0, "prompt_tokens": 0, "completion_tokens": 0,
            "memory": new_notes, "thought": "", "first_error": None}


async def call_model(state: AgentState, runtime: Runtime[AgentContext]) -> dict:
    ctx = runtime.context
    settings = ctx.settings
    if _max_tokens(ctx) != settings.max_tokens:
        settings = settings.model_copy(update={"max_tokens": _max_tokens(ctx)})
    extra = {}
    if ctx.stop_after_action and not ctx.think and settings.api_base:
        extra = {"stop": list(ACTION_STOP), "extra_body": {"include_stop_str_in_output": True}}
    result = await ctx.complete(state["messages"], settings, **extra)
    return {
        "completion": result.text, "logprobs": result.logprobs, "model": result.model,
        "prompt_tokens": state.get("prompt_tokens", 0) + result.prompt_tokens,
        "completion_tokens": state.get("completion_tokens", 0) + result.completion_tokens,
    }


def parse(state: AgentState, runtime: Runtime[AgentContext]) -> dict:
    text, thought = state["completion"], ""
    if runtime.context.think:
        thought, text = split_thought(text)
        if text is None:  # the thought stays private even when no action follows it
            return _parsed(state, "", "no 'Action:' line after your thought; end with one line: Action: <one action>",
                           thought)
    game_text = _game_text(state, runtime.context)
    if game_text is None:
        return _parsed(state, text.strip(), None if text.strip() else "the reply was empty", thought)
    try:
        return _parsed(state, game_text.check(state["view"], text), None, thought)
    except InvalidAction as exc:
        return _parsed(state, text, exc.reason, thought)


def _parsed(state: AgentState, action: str, error: str | None, thought: str) -> dict:
    out = {"action": action, "error": error, "thought": thought}
    if state.get("repairs", 0) == 0:
        out["first_error"] = error
    return out


def repair(state: AgentState, runtime: Runtime[AgentContext]) -> dict:
    messages = state["messages"] + _repair_turn(state["completion"], state["error"], runtime.context.think,
                                                state.get("legal_actions", ()))
    return {"messages": messages, "repairs": state.get("repairs", 0) + 1}


def route_after_parse(state: AgentState, runtime: Runtime[AgentContext]) -> str:
    if state.get("error") and state.get("repairs", 0) < runtime.context.retry_budget:
        return "repair"
    return "note"


def note(state: AgentState) -> dict:
    """Remember what this turn sent and, when thinking, why."""
    notes: list[Note] = []
    if state.get("thought"):
        notes.append(Note(turn=state.get("turn"), kind="thought", text=" ".join(state["thought"].split())))
    if state.get("action"):
        notes.append(Note(turn=state.get("turn"), kind="said", text=state["action"]))
    return {"memory": notes}


def build_agent(checkpointer: Any = None):
    """The compiled agent graph: one graph for every registered game, usable without the arena.

    Input: `game_id`, `view` and `legal_actions` of an observation (or `game_id` None and an
    `observation` text), optionally `rejection` and `previous` (the arena refused `previous` with
    that reason), `turn` and `memory` (the notes of earlier turns). Output adds `action` (what to
    submit: canonical when it parsed, never the thought), `error`, `thought`, `completion`,
    `messages` and the updated `memory`. Settings come as an AgentContext:

        from maro.agents.graph import AgentContext, build_agent
        from maro.agents.registry import load_settings
        from maro.arena.engine import make_game

        game = make_game("bargaining-v1")
        state, _ = game.init(seed=1)
        seen = game.observe(state, 0)
        agent = build_agent()
        out = await agent.ainvoke(
            {"game_id": "bargaining-v1", "view": dict(seen.view), "legal_actions": list(seen.legal_actions)},
            context=AgentContext(settings=load_settings("gpt-mini"), think=True, persona="a patient haggler"))
        out["action"]  # e.g. "[Offer: 120]"

    With a checkpointer (`build_agent(InMemorySaver())` and `config={"configurable": {"thread_id":
    match_id}}`) the memory accumulates in the thread by itself; pass `rejection` (None when there
    was none) every turn, since other keys persist in the thread too.
    """
    graph = StateGraph(AgentState, context_schema=AgentContext)
    graph.add_node("build_prompt", build_prompt)
    graph.add_node("call_model", call_model)
    graph.add_node("parse", parse)
    graph.add_node("repair", repair)
    graph.add_node("note", note)
    graph.add_edge(START, "build_prompt")
    graph.add_edge("build_prompt", "call_model")
    graph.add_edge("call_model", "parse")
    graph.add_conditional_edges("parse", route_after_parse, ["repair", "note"])
    graph.add_edge("repair", "call_model")
    graph.add_edge("note", END)
    return graph.compile(checkpointer=checkpointer)


def add_run(usage: Usage, state: AgentState) -> None:
    """Count one run of the graph into `usage`: its model calls (repairs included) and tokens."""
    usage.calls += 1 + state["repairs"]
    usage.prompt_tokens += state["prompt_tokens"]
    usage.completion_tokens += state["completion_tokens"]


@dataclass
class TurnStats:
    """How the agent's turns went, as the agent saw them (the arena's verdicts are in SeatResult)."""

    turns: int = 0
    """Turns answered (first prompts of a turn; the arena's re-prompts after a rejection not counted)."""
    first_try_valid: int = 0
    """Turns whose first reply passed the game's check as written."""
    local_repairs: int = 0
    unparsed: int = 0
    """Replies sent to the arena unparsed after the repair budget ran out (or the model failed)."""


class AgentPlayer:
    """Seats the agent graph in a match (the `Player` of agents.client): one per seat and match,
    holding the agent's memory of it, its token accounting (`usage`) and turn statistics."""

    def __init__(self, game_id: str, context: AgentContext, graph: Any = None):
        self.game_id = game_id
        self.context = replace(context, text=text_for(game_id))  # the text of the game it plays
        self.graph = graph or build_agent()
        self.previous = ""
        self.memory: list[Note] = []
        self.usage = Usage()
        self.stats = TurnStats()

    async def act(self, prompt: TurnPrompt, rejection: str | None) -> Submission:
        first = prompt.attempt == 0
        self.stats.turns += first
        try:
            state = await self.graph.ainvoke(
                {"game_id": self.game_id, "view": prompt.observation.view, "legal_actions": list(prompt.legal_actions),
                 "rejection": rejection, "previous": self.previous, "turn": prompt.turn, "memory": self.memory},
                context=self.context,
            )
        except ModelCallError as exc:
            self.usage.record_error(exc)
            if not exc.transient:  # a wrong key or model name does not fix itself: stop and say so
                raise
            # The model is unreachable for now: an empty action lets the arena's policy decide
            # (rejection, retry, then the game's fallback); no behavior, so nothing to learn from.
            self.stats.unparsed += 1
            self.previous = ""
            return Submission(prompt.turn, "")
        self.previous = state["completion"]
        self.memory = state.get("memory", [])
        add_run(self.usage, state)
        self.stats.local_repairs += state["repairs"]
        self.stats.first_try_valid += first and state.get("first_error") is None
        self.stats.unparsed += state.get("error") is not None
        behavior = BehaviorReport(messages=state["messages"], completion=state["completion"],
                                  logprobs=tuple(state["logprobs"]), model=state["model"])
        return Submission(prompt.turn, state["action"], behavior)
