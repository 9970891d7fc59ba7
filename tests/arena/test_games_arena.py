"""Every registered game plays through the arena: the LangGraph agent in one seat, bots elsewhere."""

import random

import grpc
import pytest

from maro.agents.bots import bot_names, get_bot
from maro.agents.client import create_match, play_seat
from maro.agents.graph import AgentContext, AgentPlayer
from maro.agents.llm import Completion
from maro.arena.engine import game_ids, make_game


class BotBrainedAgent:
    """The real agent graph, whose 'model' answers like the game's scripted bot would."""

    def __init__(self, game_id: str, seed: int):
        self.bot, self.rng, self.view, self.legal = get_bot(bot_names(game_id)[0]), random.Random(seed), None, ()
        self.agent = AgentPlayer(game_id, AgentContext(complete=self.complete))

    async def complete(self, messages, settings):
        return Completion(f"My move: {self.bot.act(self.view, self.legal, self.rng)}", (), "bot-brain", 1, 1)

    async def act(self, prompt, rejection):
        self.view, self.legal = prompt.observation.view, prompt.legal_actions
        return await self.agent.act(prompt, rejection)


@pytest.mark.parametrize("game_id", game_ids())
async def test_agent_and_bots_finish_a_match(arena, game_id):
    n = make_game(game_id).num_players()
    bot = bot_names(game_id)[0]
    seats = [{"kind": "remote", "name": "agent"}] + [{"kind": "bot", "bot": bot}] * (n - 1)
    async with grpc.aio.insecure_channel(arena.address) as channel:
        match_id, tokens = await create_match(channel, game_id, 5, seats)
        result = await play_seat(channel, match_id, tokens[0], BotBrainedAgent(game_id, 5))
    record = arena.store.get_match(match_id)
    assert record.status == "finished" and result.outcome is not None, record.end_reason
    assert not result.rejections
    mine = [b for b in arena.store.behaviors([match_id]) if b.seat == 0]
    assert mine and all(b.accepted and b.messages and b.model == "bot-brain" for b in mine)
