"""The LangGraph agent with a fake model, LiteLLM's mock path, and a seat over real gRPC."""

import grpc
import pytest

from maro.agents.client import create_match, play_seat
from maro.agents.graph import AgentContext, AgentPlayer, build_agent
from maro.agents.llm import Completion, ModelSettings, complete
from maro.arena.engine import make_game
from maro.arena.messages import TurnPrompt
from maro.arena.server import ArenaConfig, ArenaServer
from maro.arena.v1 import arena_pb2 as pb
from maro.arena.v1 import arena_pb2_grpc as pb_grpc


def scripted_model(*replies):
    calls = []

    async def fake(messages, settings):
        calls.append(messages)
        return Completion(replies[min(len(calls) - 1, len(replies) - 1)], (), "fake@v0", 100, 3)

    fake.calls = calls
    return fake


def seller_input(seed=1, rejection=None, previous=""):
    game = make_game("bargaining-v1")
    state, _ = game.init(seed)
    obs = game.observe(state, 0)
    return {"game_id": "bargaining-v1", "view": dict(obs.view), "legal_actions": list(obs.legal_actions),
            "rejection": rejection, "previous": previous}


async def test_valid_reply_is_canonicalised_without_repair():
    model = scripted_model("Let me open high. [offer: 95 ]")
    out = await build_agent().ainvoke(seller_input(), context=AgentContext(complete=model))
    assert out["action"] == "[Offer: 95]" and out["repairs"] == 0 and out["error"] is None
    assert len(model.calls) == 1 and out["completion_tokens"] == 3


async def test_unparseable_reply_is_repaired_with_the_reason():
    model = scripted_model("I will sell it", "[Offer: 80]")
    out = await build_agent().ainvoke(seller_input(), context=AgentContext(complete=model, retry_budget=2))
    assert out["action"] == "[Offer: 80]" and out["repairs"] == 1
    repair_prompt = model.calls[1]
    assert repair_prompt[-2] == {"role": "assistant", "content": "I will sell it"}
    assert "no action found" in repair_prompt[-1]["content"]
    assert out["messages"] == repair_prompt  # the behavior records what the model saw last


async def test_budget_exhausted_sends_the_raw_text_for_the_arena_to_judge():
    model = scripted_model("nope", "still nope")
    out = await build_agent().ainvoke(seller_input(), context=AgentContext(complete=model, retry_budget=1))
    assert out["action"] == "still nope" and "no action found" in out["error"] and len(model.calls) == 2


async def test_arena_rejection_reaches_the_prompt():
    model = scripted_model("[Walk]")
    inp = seller_input(rejection="the price 500 is above the maximum 200", previous="[Offer: 500]")
    await build_agent().ainvoke(inp, context=AgentContext(complete=model))
    assert model.calls[0][-2]["content"] == "[Offer: 500]"
    assert "above the maximum" in model.calls[0][-1]["content"]


async def test_litellm_mock_response_path():
    result = await complete([{"role": "user", "content": "hi"}],
                            ModelSettings(model="openai/gpt-4o-mini", api_key="sk-test", logprobs=False),
                            mock_response="[Accept]")
    assert result.text == "[Accept]" and result.completion_tokens > 0


async def test_agent_player_reports_behaviors_through_the_arena(tmp_path):
    server = ArenaServer(ArenaConfig(port=0, db=str(tmp_path / "m.sqlite")))
    await server.start()
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            match_id, tokens = await create_match(channel, "bargaining-v1", 9,
                                                  [{"kind": "remote"}, {"kind": "bot", "bot": "bargaining-bot"}])
            player = AgentPlayer("bargaining-v1", AgentContext(complete=scripted_model("[Offer: 150]")))
            result = await play_seat(channel, match_id, tokens[0], player)
            record = await pb_grpc.ArenaStub(channel).GetMatch(pb.GetMatchRequest(match_id=match_id))
        assert record.status == "finished" and result.accepted >= 1
        mine = [b for b in server.store.behaviors([match_id]) if b.seat == 0]
        assert mine and all(b.completion == "[Offer: 150]" and b.model == "fake@v0" for b in mine)
        assert mine[0].messages[0]["role"] == "system" and "SELLER" in mine[0].messages[0]["content"]
    finally:
        await server.stop()
