"""`maro agent run`: agents take open seats through the lobby of a real arena on loopback."""

import asyncio
import io
import os
import sys

import grpc
import pytest
from rich.console import Console

from maro.agents.client import create_match, find_seat
from maro.agents.llm import Completion, ModelCallError, ModelSettings
from maro.agents.run import AgentRunConfig, AgentRunError, AgentRunner
from tests.helpers import free_port

OPEN_VS_BOT = [{"kind": "open"}, {"kind": "bot", "bot": "bargaining-bot"}]


async def offers(messages, settings):
    return Completion("[Offer: 60]", (), "scripted", 10, 2)


def quiet() -> Console:
    return Console(file=io.StringIO(), width=120)


def runner(arena, console=None, complete_fn=offers, **config) -> AgentRunner:
    config = AgentRunConfig(arena=arena.address, game="bargaining-v1", model="scripted", poll_s=0.2, **config)
    return AgentRunner(config, ModelSettings(), complete_fn=complete_fn, console=console or quiet())


async def open_matches(arena, plans):
    async with grpc.aio.insecure_channel(arena.address) as channel:
        return [(await create_match(channel, "bargaining-v1", seed, seats))[0] for seed, seats in enumerate(plans)]


async def test_agents_join_open_seats_of_several_matches_and_stop_at_the_count(arena):
    both_open = [{"kind": "open"}, {"kind": "open"}]
    ids = await open_matches(arena, [OPEN_VS_BOT, both_open, OPEN_VS_BOT, OPEN_VS_BOT])
    console = quiet()
    summary = await runner(arena, console, seats=2, matches=4).run()
    assert summary.stopped == "match count reached" and len(summary.matches) == 4 and not summary.errors
    played = {m.match_id for m in summary.matches}
    assert played == set(ids[:3])  # the lobby hands out the oldest seats first; both seats of match 2 are ours
    for match_id in played:
        record = arena.store.get_match(match_id)
        assert record.status == "finished", record.end_reason
        assert any(s.name == "agent:scripted" for s in record.seats)
    assert arena.store.get_match(ids[3]).status == "created"  # the count was reached: its seat stays open
    assert summary.usage.calls == sum(m.turns for m in summary.matches) and summary.usage.prompt_tokens > 0
    assert all(m.outcome is not None and m.stats.turns == m.turns for m in summary.matches)
    assert "4 matches (match count reached)" in console.file.getvalue()


async def test_a_given_match_and_token(arena):
    async with grpc.aio.insecure_channel(arena.address) as channel:
        match_id, tokens = await create_match(channel, "bargaining-v1", 3,
                                              [{"kind": "remote"}, {"kind": "bot", "bot": "bargaining-bot"}])
    summary = await runner(arena, match_id=match_id, token=tokens[0]).run()
    assert [m.match_id for m in summary.matches] == [match_id] and summary.matches[0].seat == 0
    assert arena.store.get_match(match_id).status == "finished"


async def test_stop_lets_matches_finish_and_takes_no_new_seats(arena):
    ids = await open_matches(arena, [OPEN_VS_BOT, OPEN_VS_BOT])
    run = runner(arena, seats=2)

    async def stop_after_two():
        while len(run.summary.matches) < 2:
            await asyncio.sleep(0.05)
        run.interrupt()  # a first Ctrl-C: finish, take nothing new

    stopper = asyncio.create_task(stop_after_two())
    summary = await asyncio.wait_for(run.run(), 30)
    await stopper
    assert summary.stopped == "stopped" and {m.match_id for m in summary.matches} == set(ids)
    # Nothing is left half-claimed: a new open seat stays open.
    later = await open_matches(arena, [OPEN_VS_BOT])
    await asyncio.sleep(0.5)
    assert arena.store.get_match(later[0]).status == "created"


async def test_a_bad_arena_address_is_a_clear_error():
    config = AgentRunConfig(arena="127.0.0.1:1", game="bargaining-v1", connect_timeout_s=5)
    with pytest.raises(AgentRunError, match=r"cannot reach the arena at 127.0.0.1:1.*maro arena serve"):
        await AgentRunner(config, ModelSettings(), console=quiet()).run()


async def test_an_unknown_game_lists_the_hosted_ones(arena):
    config = AgentRunConfig(arena=arena.address, game="chess-v9")
    with pytest.raises(AgentRunError, match=r"no game 'chess-v9'; it hosts: .*bargaining-v1"):
        await AgentRunner(config, ModelSettings(), console=quiet()).run()


async def test_a_model_server_that_is_down_is_a_clear_error_before_any_seat(arena):
    await open_matches(arena, [OPEN_VS_BOT])
    config = AgentRunConfig(arena=arena.address, game="bargaining-v1", model="local", matches=1)
    down = ModelSettings(api_base=f"http://127.0.0.1:{free_port()}/v1")
    with pytest.raises(AgentRunError, match=r"model 'local': no server answers at http://127.0.0.1:\d+/v1"):
        await AgentRunner(config, down, console=quiet()).run()
    async with grpc.aio.insecure_channel(arena.address) as channel:
        assert (await find_seat(channel, "bargaining-v1"))[0]  # the open seat was left for others


async def test_a_model_that_refuses_us_stops_the_run(arena):
    await open_matches(arena, [OPEN_VS_BOT])

    async def bad_key(messages, settings):
        raise ModelCallError("AuthenticationError: bad key", transient=False, attempts=1)

    with pytest.raises(AgentRunError, match="the model failed: AuthenticationError"):
        await asyncio.wait_for(runner(arena, complete_fn=bad_key, matches=3).run(), 30)


def test_config_checks_its_options():
    with pytest.raises(ValueError, match="go together"):
        AgentRunConfig(arena="a:1", game="g", match_id="m")
    with pytest.raises(ValueError, match="one seat"):
        AgentRunConfig(arena="a:1", game="g", match_id="m", token="t", seats=2)


async def agent_command(arena, registry, *args: str) -> asyncio.subprocess.Process:
    """`maro agent run` as a real process playing the registry's `tiny` model."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "maro.learner.cli", "agent", "run", "--arena", arena.address, "--game", "bargaining-v1",
        "--model", "tiny", "--registry", str(registry), "--retry-budget", "0", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env={**os.environ, "COLUMNS": "160"})


async def test_the_command_plays_the_local_model_from_the_registry(arena, tiny_registry):
    """The real program: `maro agent run` -> registry -> LiteLLM -> local model server (tiny model)
    -> arena. The random tiny model rarely writes a valid action; the arena's policy ends the match."""
    [match_id] = await open_matches(arena, [OPEN_VS_BOT])
    proc = await agent_command(arena, tiny_registry, "--matches", "1", "--persona", "a calm trader")
    out, _ = await asyncio.wait_for(proc.communicate(), 180)
    text = out.decode()
    assert proc.returncode == 0, text
    assert "1 matches (match count reached)" in text and match_id[:8] in text
    record = arena.store.get_match(match_id)
    assert record.status == "finished" and record.seats[0].name == "agent:tiny"
    mine = [b for b in arena.store.behaviors([match_id]) if b.seat == 0 and b.messages]
    assert mine and all(b.model.startswith("smollm2@") and "a calm trader" in b.messages[0]["content"] for b in mine)


def test_the_command_explains_a_bad_address_and_an_unknown_model(tmp_path):
    from typer.testing import CliRunner

    from maro.learner.cli import app

    cli = CliRunner()
    result = cli.invoke(app, ["agent", "run", "--arena", "127.0.0.1:1", "--game", "bargaining-v1", "--matches", "1"])
    assert result.exit_code == 1 and "cannot reach the arena at 127.0.0.1:1" in result.output
    result = cli.invoke(app, ["agent", "run", "--arena", "127.0.0.1:1", "--game", "bargaining-v1", "--model", "nope"])
    assert result.exit_code == 2 and "unknown model 'nope'" in result.output
    listing = cli.invoke(app, ["agent", "models", "--registry", "examples/models.toml"])
    assert listing.exit_code == 0 and "gpt-mini" in listing.output and "OPENAI_API_KEY" in listing.output


async def test_ctrl_c_finishes_cleanly(arena, tiny_registry):
    """Without --matches the command plays on; a first Ctrl-C (SIGINT) ends it with a summary."""
    import signal

    [match_id] = await open_matches(arena, [OPEN_VS_BOT])
    proc = await agent_command(arena, tiny_registry)
    for _ in range(600):
        if arena.store.get_match(match_id, with_events=False).status == "finished":
            break
        await asyncio.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode()
    assert proc.returncode == 0, text
    assert "stopping: finishing the matches in progress" in text and "1 matches (stopped)" in text


async def first_listed_action(messages, settings):
    """A scripted model that plays the first action the prompt lists (adapted games list them)."""
    import re

    current = messages[-1]["content"]
    line = next(ln for ln in reversed(current.splitlines()) if "Legal actions:" in ln or "accepts now" in ln)
    return Completion("I will play this. " + re.search(r"\[[^\]]+\]", line).group(0), (), "scripted", 10, 2)


@pytest.mark.parametrize("game_id, bot", [("textarena:KuhnPoker-v0", "textarena-random"),
                                          ("openspiel:kuhn_poker", "openspiel-cfr")])
async def test_agents_play_adapted_games_through_the_lobby(arena, game_id, bot):
    async with grpc.aio.insecure_channel(arena.address) as channel:
        ids = [(await create_match(channel, game_id, seed, [{"kind": "open"}, {"kind": "bot", "bot": bot}]))[0]
               for seed in range(2)]
    config = AgentRunConfig(arena=arena.address, game=game_id, model="scripted", poll_s=0.2, matches=2)
    summary = await AgentRunner(config, ModelSettings(), complete_fn=first_listed_action, console=quiet()).run()
    assert len(summary.matches) == 2 and not summary.errors
    for match_id in ids:
        record = arena.store.get_match(match_id)
        assert record.status == "finished", record.end_reason
        assert all(b.accepted for b in arena.store.behaviors([match_id]) if b.seat == 0)
