"""The LangGraph agent with a fake model, LiteLLM's mock path, and a seat over real gRPC."""

import grpc
import pytest

from maro.agents.client import create_match, play_seat
from maro.agents.graph import AgentContext, AgentPlayer, build_agent
from maro.agents.llm import Completion, ModelSettings, complete
from maro.agents.seats import ServerSeats
from maro.arena.engine import make_game
from maro.arena.match.messages import TurnPrompt
from maro.arena.transport.grpc.server import ArenaConfig, ArenaServer
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
    # The repair restates the seat's legal actions, which the model can copy.
    assert "Legal actions: [Offer: N] with N an integer from 0 to 200; [Walk]" in repair_prompt[-1]["content"]
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
    assert "Legal actions: [Offer: N]" in model.calls[0][-1]["content"]


async def test_litellm_mock_response_path():
    result = await complete([{"role": "user", "content": "hi"}],
                            ModelSettings(model="openai/gpt-4o-mini", api_key="sk-test", logprobs=False),
                            mock_response="[Accept]")
    assert result.text == "[Accept]" and result.completion_tokens > 0


async def test_agent_player_reports_behaviors_through_the_arena(tmp_path):
    server = ArenaServer(ArenaConfig(port=0, db=str(tmp_path / "m.sqlite")), seats=ServerSeats())
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


# --- persona, private thought, memory, the fallback after the budget ---------------------------


async def test_persona_goes_into_the_system_prompt():
    model = scripted_model("[Offer: 90]")
    await build_agent().ainvoke(seller_input(), context=AgentContext(complete=model, persona="a gruff fishmonger"))
    system = model.calls[0][0]
    assert system["role"] == "system" and "a gruff fishmonger" in system["content"] and "SELLER" in system["content"]


async def test_thinking_submits_only_the_action_line():
    reply = "Thought: the buyer seems eager, and [Offer: 10] would be far too low.\nAction: [Offer: 120]"
    model = scripted_model(reply)
    out = await build_agent().ainvoke(seller_input(), context=AgentContext(complete=model, think=True))
    assert out["action"] == "[Offer: 120]" and out["error"] is None
    assert out["thought"].startswith("the buyer seems eager") and "Offer: 10" not in out["action"]
    assert out["completion"] == reply  # the behavior keeps the whole reply for the learner
    system, example = model.calls[0][0]["content"], model.calls[0][2]["content"]
    assert "Thought:" in system and "Action: " in system
    assert example.startswith("Thought:") and example.endswith("Action: [Offer: 95]")


async def test_thinking_widens_the_token_limit_only_while_thinking():
    seen = []

    async def model(messages, settings):
        seen.append(settings.max_tokens)
        return Completion("Thought: ok\nAction: [Walk]", (), "fake", 1, 1)

    await build_agent().ainvoke(seller_input(), context=AgentContext(complete=model, think=True, think_max_tokens=300))
    await build_agent().ainvoke(seller_input(), context=AgentContext(complete=model))
    assert seen == [300, ModelSettings().max_tokens]


async def test_a_thought_without_an_action_is_never_submitted():
    model = scripted_model("Thought: I could bid [Offer: 150] but I am not sure yet")
    out = await build_agent().ainvoke(seller_input(), context=AgentContext(complete=model, think=True, retry_budget=0))
    assert out["action"] == "" and "Action:" in out["error"] and len(model.calls) == 1


async def test_an_unparseable_action_line_is_repaired_in_thinking_form():
    model = scripted_model("Thought: hmm\nAction: sell it", "Thought: fix\nAction: [Offer: 80]")
    out = await build_agent().ainvoke(seller_input(), context=AgentContext(complete=model, think=True))
    assert out["action"] == "[Offer: 80]" and out["first_error"] is not None
    assert "Action: " in model.calls[1][-1]["content"]


def test_split_thought_variants():
    from maro.agents.graph import split_thought

    assert split_thought("Thought: a\nb\nAction: [Walk]") == ("a\nb", "[Walk]")
    assert split_thought("**Thought:** a\n**Action:** [Accept]") == ("a", "[Accept]")
    assert split_thought("Thought: a\nAction:\n[Walk]\n") == ("a", "[Walk]")
    assert split_thought("[Offer: 5]") == ("", "[Offer: 5]")  # no sections: all action
    assert split_thought("Thought: only thinking") == ("only thinking", None)


async def test_budget_zero_means_no_repair_loop():
    model = scripted_model("nope", "[Offer: 80]")
    out = await build_agent().ainvoke(seller_input(), context=AgentContext(complete=model, retry_budget=0))
    assert len(model.calls) == 1 and out["repairs"] == 0 and out["action"] == "nope" and out["first_error"]


def _turn_prompt(seed=1, turn=0, attempt=0):
    from maro.arena.match.messages import ObservationMsg

    game = make_game("bargaining-v1")
    state, _ = game.init(seed)
    obs = game.observe(state, 0)
    return TurnPrompt(turn=turn, attempt=attempt, attempts_left=2 - attempt,
                      observation=ObservationMsg(turn, obs.role, dict(obs.view)),
                      legal_actions=obs.legal_actions, action_format="", deadline_unix_ms=0)


async def test_memory_carries_actions_thoughts_and_refusals_within_its_budget():
    model = scripted_model("Thought: open high\nAction: [Offer: 500]", "Thought: lower\nAction: [Offer: 150]")
    player = AgentPlayer("bargaining-v1", AgentContext(complete=model, think=True, memory_tokens=400, retry_budget=0))
    await player.act(_turn_prompt(turn=0), None)
    assert "notes" not in model.calls[0][-1]["content"]  # nothing to remember yet
    await player.act(_turn_prompt(turn=0, attempt=1), "the price 500 is above the maximum 200")
    last_user = next(m["content"] for m in reversed(model.calls[1]) if m["content"].startswith("Your private notes"))
    assert "Turn 0: you played [Offer: 500]" in last_user and "you thought: open high" in last_user
    kinds = [n["kind"] for n in player.memory]
    assert kinds == ["thought", "said", "refused", "thought", "said"]
    assert "above the maximum" in player.memory[2]["text"]


def test_memory_drops_the_oldest_notes_first_and_counts_them():
    from maro.agents.graph import estimate_tokens, render_memory

    notes = [{"turn": i, "kind": "said", "text": f"[Offer: {100 + i}]"} for i in range(50)]
    block = render_memory(notes, budget=80)
    assert estimate_tokens(block) <= 80
    assert "[Offer: 149]" in block and "[Offer: 100]" not in block
    kept = block.count("you played")
    assert f"({50 - kept} earlier notes left out)" in block and 0 < kept < 50
    assert render_memory(notes, budget=5) == ""


async def test_memory_is_off_by_default_and_fits_the_model_context():
    model = scripted_model("[Offer: 120]")
    notes = [{"turn": i, "kind": "said", "text": "[Offer: 130]"} for i in range(40)]
    inp = {**seller_input(), "memory": notes}
    await build_agent().ainvoke(inp, context=AgentContext(complete=model))
    assert "private notes" not in model.calls[0][-1]["content"]
    # A context window just above the prompt leaves no room for notes, whatever the budget says.
    prompt_tokens = sum(len(m["content"]) // 4 + 5 for m in model.calls[0])
    tight = ModelSettings(context_tokens=prompt_tokens + 30)
    await build_agent().ainvoke(inp, context=AgentContext(complete=model, settings=tight, memory_tokens=1000))
    assert "private notes" not in model.calls[1][-1]["content"]
    roomy = ModelSettings(context_tokens=prompt_tokens + 400)
    await build_agent().ainvoke(inp, context=AgentContext(complete=model, settings=roomy, memory_tokens=1000))
    assert "private notes" in model.calls[2][-1]["content"]


async def test_standalone_graph_with_a_checkpointer_remembers_across_turns():
    from langgraph.checkpoint.memory import InMemorySaver

    model = scripted_model("[Offer: 150]", "[Offer: 140]")
    agent = build_agent(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "match-1"}}
    ctx = AgentContext(complete=model, memory_tokens=200)
    await agent.ainvoke({**seller_input(), "turn": 0}, config=config, context=ctx)
    out = await agent.ainvoke({**seller_input(), "turn": 2}, config=config, context=ctx)
    assert [n["text"] for n in out["memory"]] == ["[Offer: 150]", "[Offer: 140]"]
    assert "Turn 0: you played [Offer: 150]" in model.calls[1][-1]["content"]


async def test_after_the_budget_the_arena_judges_the_raw_text_and_plays_the_fallback(tmp_path):
    """A model that never answers in format: the agent repairs locally, then sends the raw text; the
    arena rejects it with the reason, re-prompts, and after its retries plays the game's fallback."""
    from maro.arena.match.runner import RunnerConfig

    server = ArenaServer(ArenaConfig(port=0, db=str(tmp_path / "m.sqlite"), runner=RunnerConfig(max_retries=1)), seats=ServerSeats())
    await server.start()
    try:
        model = scripted_model("I refuse to play")
        async with grpc.aio.insecure_channel(server.address) as channel:
            # prisoners_dilemma declares a `default` fallback: the match goes on without the agent's action
            match_id, tokens = await create_match(channel, "prisoners_dilemma-v1", 3,
                                                  [{"kind": "remote"}, {"kind": "bot", "bot": "prisoners_dilemma-bot"}])
            player = AgentPlayer("prisoners_dilemma-v1", AgentContext(complete=model, retry_budget=1))
            result = await play_seat(channel, match_id, tokens[0], player)
        mine = [b for b in server.store.behaviors([match_id]) if b.seat == 0]
        assert result.rejections and all("I refuse" not in r or "no action" in r for r in result.rejections)
        assert any(b.fallback for b in mine) and not any(b.accepted and not b.fallback for b in mine)
        assert result.outcome is not None and server.store.get_match(match_id).status == "finished"
        # each turn: 2 arena attempts x (1 reply + 1 local repair)
        assert player.stats.turns >= 1 and player.usage.calls == 4 * player.stats.turns
        assert player.stats.first_try_valid == 0 and player.stats.unparsed == 2 * player.stats.turns
    finally:
        await server.stop()


async def test_a_transient_model_failure_leaves_the_turn_to_the_arena_and_a_permanent_one_stops():
    from maro.agents.llm import ModelCallError

    async def down(messages, settings):
        raise ModelCallError("connection refused", transient=True, attempts=3)

    player = AgentPlayer("bargaining-v1", AgentContext(complete=down))
    submission = await player.act(_turn_prompt(), None)
    assert submission.text == "" and submission.behavior is None and player.usage.errors == 1

    async def bad_key(messages, settings):
        raise ModelCallError("401 bad key", transient=False, attempts=1)

    with pytest.raises(ModelCallError):
        await AgentPlayer("bargaining-v1", AgentContext(complete=bad_key)).act(_turn_prompt(), None)


async def test_other_seats_never_see_the_thought(tmp_path):
    """Thoughts stay in this seat's behavior record; events, the public record and the other
    seat's observations hold only the submitted action."""
    from maro.agents.bots import ScriptedPlayer

    secret = "SECRET-PLAN-7"
    server = ArenaServer(ArenaConfig(port=0, db=str(tmp_path / "m.sqlite")), seats=ServerSeats())
    await server.start()
    try:
        model = scripted_model(f"Thought: {secret}, say nothing of it.\nAction: [Say: hello there]")
        seen: list[str] = []

        class Watcher(ScriptedPlayer):
            def observe(self, message):
                seen.append(repr(message))

            async def act(self, prompt, rejection):
                seen.append(repr(prompt))
                return await super().act(prompt, rejection)

        async with grpc.aio.insecure_channel(server.address) as channel:
            match_id, tokens = await create_match(channel, "prisoners_dilemma-v1", 1,
                                                  [{"kind": "remote"}, {"kind": "remote"}])
            agent = AgentPlayer("prisoners_dilemma-v1", AgentContext(complete=model, think=True, retry_budget=0))
            import asyncio

            await asyncio.gather(play_seat(channel, match_id, tokens[0], agent),
                                 play_seat(channel, match_id, tokens[1], Watcher("prisoners_dilemma-bot")))
            record = await pb_grpc.ArenaStub(channel).GetMatch(pb.GetMatchRequest(match_id=match_id))
        assert seen and not any(secret in s for s in seen)
        assert secret not in str(record)
        stored = server.store.get_match(match_id)
        assert not any(secret in e.text for e in stored.events)
        mine = [b for b in server.store.behaviors([match_id]) if b.seat == 0]
        assert all(secret not in b.action_text for b in mine) and any(secret in b.completion for b in mine)
    finally:
        await server.stop()


async def test_the_docstring_example_runs_standalone_through_litellm(monkeypatch):
    """build_agent() as a LangGraph user would run it: registry settings, real LiteLLM (mock reply)."""
    import functools
    from pathlib import Path

    from maro.agents.registry import load_settings

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-real")
    settings = load_settings("gpt-mini", Path(__file__).resolve().parents[2] / "examples" / "models.toml")
    game = make_game("bargaining-v1")
    state, _ = game.init(seed=1)
    seen = game.observe(state, 0)
    mocked = functools.partial(complete, mock_response="Thought: open high, leave room.\nAction: [offer: 120]")
    out = await build_agent().ainvoke(
        {"game_id": "bargaining-v1", "view": dict(seen.view), "legal_actions": list(seen.legal_actions)},
        context=AgentContext(settings=settings, think=True, persona="a patient haggler", complete=mocked))
    assert out["action"] == "[Offer: 120]" and out["thought"] == "open high, leave room."
    assert "a patient haggler" in out["messages"][0]["content"]


async def test_stop_after_action_asks_the_server_to_end_at_the_bracket_and_keep_it():
    seen = []

    async def model(messages, settings, **extra):
        seen.append(extra)
        return Completion("[Offer: 90]", (), "fake@v0", 100, 5)

    local = ModelSettings(model="openai/smollm2", api_base="http://127.0.0.1:1/v1")
    for context, expected in (
            (AgentContext(complete=model, settings=local, stop_after_action=True),
             {"stop": ["]"], "extra_body": {"include_stop_str_in_output": True}}),
            (AgentContext(complete=model, settings=local), {}),  # off by default
            (AgentContext(complete=model, settings=local, stop_after_action=True, think=True), {}),  # a thought has brackets
            (AgentContext(complete=model, settings=ModelSettings(model="openai/gpt-4o-mini"), stop_after_action=True),
             {})):  # hosted providers do not know the flag
        seen.clear()
        out = await build_agent().ainvoke(seller_input(), context=context)
        assert seen == [expected]
        assert out["action"] == "[Offer: 90]" or context.think

