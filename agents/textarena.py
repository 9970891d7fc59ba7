"""TextArena interop: TextArena-style agents in our arena, and our agent in TextArena's environments.

TextArena's agent contract is a callable from observation text to action text
(`textarena.Agent.__call__(observation: str) -> str`). `TextAgentPlayer` seats any such callable
(or coroutine function) in a match of ours; `TextArenaAgent` is our LangGraph agent behind that
contract, and `play_textarena` runs a TextArena environment with such agents when `textarena`
is installed (it is optional: nothing here imports it at module level).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from maro.agents.graph import AgentContext, Note, add_run, build_agent
from maro.agents.llm import Usage
from maro.arena.engine import text_for
from maro.arena.match.messages import Submission, TurnPrompt

TextAgent = Callable[[str], Any]
"""observation text -> action text (or an awaitable of it)."""


def observation_text(game_id: str, prompt: TurnPrompt, rejection: str | None = None, previous: str = "") -> str:
    """What a text agent reads: the game's rules and the current situation as one text, as our
    prompt renders them (without the worked example), with the arena's refusal first if any."""
    messages = text_for(game_id).render_prompt(prompt.observation.view, prompt.legal_actions)
    rules = next((m["content"] for m in messages if m["role"] == "system"), "")
    current = messages[-1]["content"]
    parts = [f"[GAME] {rules}", f"[GAME] {current}", f"Action format: {prompt.action_format}"]
    if rejection:
        parts.insert(0, f"[GAME] Your action {previous!r} was refused: {rejection}. Try again.")
    return "\n\n".join(parts)


class TextAgentPlayer:
    """Any TextArena-style agent as a player of our arena (the `Player` of agents.client).

    A plain function runs in a worker thread (TextArena agents block on their HTTP calls), so the
    seat's stream keeps going; a coroutine function is awaited. The text it returns is submitted
    as it is: the arena judges it and sends the reason back, which the agent reads in its next
    observation.
    """

    def __init__(self, game_id: str, agent: TextAgent):
        if not callable(agent):
            raise TypeError(f"a TextArena agent is a callable from observation text to action text, got {agent!r}")
        self.game_id, self.agent = game_id, agent
        self.previous = ""
        self.observations: list[str] = []

    async def act(self, prompt: TurnPrompt, rejection: str | None) -> Submission:
        text = observation_text(self.game_id, prompt, rejection, self.previous)
        self.observations.append(text)
        if _is_async(self.agent):
            action = await self.agent(text)
        else:
            action = await asyncio.to_thread(self.agent, text)
            if inspect.isawaitable(action):
                action = await action
        self.previous = str(action or "")
        return Submission(prompt.turn, self.previous)


def _is_async(agent: TextAgent) -> bool:
    """A coroutine function, or an object whose __call__ is one."""
    return inspect.iscoroutinefunction(agent) or inspect.iscoroutinefunction(type(agent).__call__)


class TextArenaAgent:
    """Our LangGraph agent behind TextArena's contract: `agent(observation) -> action`.

    TextArena's environments check actions themselves, so the agent sends its reply as it is (the
    action line only when thinking). `await agent.acall(obs)` inside an event loop; `agent(obs)`
    from synchronous code such as TextArena's own loop (it runs a private event loop).
    """

    def __init__(self, context: AgentContext, graph: Any = None):
        self.context = context
        self.graph = graph or build_agent()
        self.memory: list[Note] = []
        self.usage = Usage()
        self.turn = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    async def acall(self, observation: str) -> str:
        state = await self.graph.ainvoke(
            {"game_id": None, "observation": _as_text(observation), "turn": self.turn, "memory": self.memory},
            context=self.context)
        self.turn += 1
        self.memory = state.get("memory", [])
        add_run(self.usage, state)
        return state["action"]

    def __call__(self, observation: str) -> str:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError("called from inside an event loop: use `await agent.acall(observation)`")
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()  # one loop for all calls: LiteLLM's clients stay usable
        return self._loop.run_until_complete(self.acall(observation))

    def close(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.close()


def play_textarena(env_id: str, agents: Mapping[int, TextAgent], *, seed: int | None = None,
                   env: Any = None) -> tuple[dict[int, float], dict]:
    """Play one TextArena game: `agents` maps player ids to callables (ours or TextArena's).
    Returns (rewards, game_info); game_info is empty on TextArena versions whose close() returns
    only the rewards. `env` replaces `textarena.make(env_id)` (tests, wrapped environments)."""
    if env is None:
        try:
            import textarena as ta
        except ImportError:
            raise ImportError("play_textarena needs TextArena: pip install textarena") from None
        env = ta.make(env_id=env_id)
    env.reset(num_players=len(agents), seed=seed)
    done = False
    try:
        while not done:
            player_id, observation = env.get_observation()
            action = agents[player_id](_as_text(observation))
            done, _info = env.step(action=action)
    finally:
        result = env.close()
    if isinstance(result, tuple) and len(result) == 2:
        rewards, info = result
    else:
        rewards, info = result, {}
    return dict(rewards or {}), dict(info or {})


def _as_text(observation: Any) -> str:
    """TextArena's default wrappers give text; raw environments give (from_id, message, kind) tuples."""
    if isinstance(observation, str):
        return observation
    lines = []
    for item in observation or ():
        if isinstance(item, (tuple, list)) and len(item) >= 2:
            sender = "GAME" if item[0] == -1 else f"Player {item[0]}"
            lines.append(f"[{sender}] {item[1]}")
        else:
            lines.append(str(item))
    return "\n".join(lines)


async def play_text_agent(address: str, game_id: str, agent: TextAgent, *, matches: int | None = 1, seats: int = 1,
                          name: str = "textarena-agent", console: Any = None, key: str | None = None):
    """Seat a TextArena-style agent in open seats of `game_id` at the arena `address` through the
    lobby, like `maro agent run` does for ours; returns the run's summary. `key`: the arena key,
    for arenas started with a key file."""
    from maro.agents.llm import ModelSettings
    from maro.agents.run import AgentRunConfig, AgentRunner

    config = AgentRunConfig(arena=address, game=game_id, matches=matches, seats=seats, name=name, key=key)
    runner = AgentRunner(config, ModelSettings(), make_player=lambda: TextAgentPlayer(game_id, agent),
                         console=console)
    return await runner.run()
