"""TextArena interop: a plain callable agent in our arena (no TextArena needed), our agent behind
TextArena's contract, and TextArena's own environments when `textarena` is installed."""

import importlib.util
import io
import re

import grpc
import pytest
from rich.console import Console

from maro.agents.client import create_match, play_seat
from maro.agents.graph import AgentContext
from maro.agents.llm import Completion
from maro.agents.textarena import TextAgentPlayer, TextArenaAgent, play_text_agent, play_textarena


class Haggler:
    """A TextArena-style agent: observation text in, action text out; it misreads the format once."""

    def __init__(self):
        self.observations: list[str] = []

    def __call__(self, observation: str) -> str:
        self.observations.append(observation)
        if len(self.observations) == 1:
            return "I offer 500 dollars"  # no bracketed action: the arena refuses and says why
        return "[Walk]" if "refused" not in observation else "[Offer: 120]"


async def test_a_plain_callable_plays_a_match_and_reads_the_refusal(arena):
    agent = Haggler()
    async with grpc.aio.insecure_channel(arena.address) as channel:
        match_id, tokens = await create_match(channel, "bargaining-v1", 2,
                                              [{"kind": "remote"}, {"kind": "bot", "bot": "bargaining-bot"}])
        result = await play_seat(channel, match_id, tokens[0], TextAgentPlayer("bargaining-v1", agent))
    assert arena.store.get_match(match_id).status == "finished" and result.outcome is not None
    first, second = agent.observations[:2]
    assert "You are the SELLER" in first and "Legal actions:" in first and "[Offer: N]" in first
    assert "'I offer 500 dollars' was refused: no action found" in second
    actions = [b.action_text for b in arena.store.behaviors([match_id]) if b.seat == 0]
    assert actions[:2] == ["I offer 500 dollars", "[Offer: 120]"]


async def test_a_coroutine_agent_takes_open_seats_through_the_lobby(arena):
    async def walker(observation: str) -> str:
        return "[Walk]"

    async with grpc.aio.insecure_channel(arena.address) as channel:
        for seed in range(2):
            seats = [{"kind": "open"}, {"kind": "bot", "bot": "bargaining-bot"}]
            await create_match(channel, "bargaining-v1", seed, seats)
    summary = await play_text_agent(arena.address, "bargaining-v1", walker, matches=2,
                                    console=Console(file=io.StringIO()))
    assert len(summary.matches) == 2 and all(m.reason.endswith("walked away") for m in summary.matches)


def test_a_non_callable_is_refused():
    with pytest.raises(TypeError, match="callable from observation text"):
        TextAgentPlayer("bargaining-v1", "not an agent")


class GuessEnv:
    """A stand-in with TextArena's environment interface (reset/get_observation/step/close):
    guess the number 7 within 4 tries; raw observations are (from_id, message, kind) tuples."""

    def reset(self, num_players, seed=None):
        self.tries, self.done, self.pending = 0, False, [(-1, "Guess a number from 1 to 10. Reply as [N].", 0)]

    def get_observation(self):
        observation, self.pending = self.pending, []
        return 0, observation

    def step(self, action):
        self.tries += 1
        guess = re.search(r"\[(\d+)\]", action)
        if guess and int(guess.group(1)) == 7:
            self.done, self.rewards = True, {0: 1}
        elif self.tries >= 4:
            self.done, self.rewards = True, {0: -1}
        else:
            self.pending = [(-1, f"Wrong: {action!r}. Try again.", 0)]
        return self.done, {}

    def close(self):
        return self.rewards, {0: {"turn_count": self.tries}}


def test_our_agent_plays_a_textarena_style_environment():
    replies = iter(["Thought: start low\nAction: [3]", "Thought: the answer is 7\nAction: [7]"])
    seen = []

    async def model(messages, settings):
        seen.append(messages)
        return Completion(next(replies), (), "scripted", 5, 5)

    agent = TextArenaAgent(AgentContext(complete=model, think=True, memory_tokens=200))
    try:
        rewards, info = play_textarena("GuessTheNumber-v0", {0: agent}, env=GuessEnv())
    finally:
        agent.close()
    assert rewards == {0: 1} and info[0]["turn_count"] == 2
    assert "[GAME] Guess a number" in seen[0][-1]["content"]
    assert "Wrong: '[3]'" in seen[1][-1]["content"]  # only the action reached the environment, not the thought
    assert "you thought: start low" in seen[1][-1]["content"] and agent.usage.calls == 2


async def test_inside_an_event_loop_the_sync_call_points_to_acall():
    agent = TextArenaAgent(AgentContext(complete=None))
    with pytest.raises(RuntimeError, match="acall"):
        agent("observation")


@pytest.mark.skipif(importlib.util.find_spec("textarena") is None, reason="textarena is not installed")
def test_our_agent_plays_a_real_textarena_environment():
    async def model(messages, settings):
        return Completion("[5]", (), "scripted", 1, 1)

    agent = TextArenaAgent(AgentContext(complete=model, retry_budget=0))
    try:
        rewards, _info = play_textarena("GuessTheNumber-v0", {0: agent}, seed=1)
    finally:
        agent.close()
    assert set(rewards) == {0}
