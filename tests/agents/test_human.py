"""The terminal client, driven as a person drives it: a real process on a pseudo-terminal."""

import io
import itertools
import os
import re
import sys

import pexpect
import pytest

from maro.agents.bots import default_bot
from maro.agents.human import seat_plan
from maro.arena.engine import InvalidAction
from maro.arena.present import check_line, view_lines
from tests.helpers import free_port

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True", "GRPC_VERBOSITY": "ERROR"}
PROMPT_OR_END = [r"\r?\n> ", r"=== match over: ([^\r\n]*) ==="]


def spawn(args: list[str]) -> pexpect.spawn:
    return pexpect.spawn(sys.executable, args, env=ENV, encoding="utf-8", timeout=10)


def test_bargaining_against_the_bot_from_the_terminal():
    code = ("import asyncio; from maro.agents.human import play_human; "
            "asyncio.run(play_human(None, 'bargaining-v1', 'bargaining-bot', seed=3, params=None, seat=0, "
            "match_id=None, token=None, name='tester'))")
    child = spawn(["-c", code])
    child.expect(r"you are seat 0, seller ===")
    child.expect(r"cost: (\d+)")
    assert 0 <= int(child.match.group(1)) <= 200
    child.expect(r"Legal actions: \[Offer: N\]")
    child.expect(r"Time left: (\d+) s")
    assert int(child.match.group(1)) > 0
    child.expect(r"\r?\n> ")

    child.sendline("cheap please")
    child.expect(r"Not valid: no action found in 'cheap please'")
    child.expect(r"\r?\n> ")
    child.sendline("[Accept]")  # nothing to accept yet: refused locally, the arena never sees it
    child.expect(r"Not valid: there is no offer from the other side to accept")
    child.expect(r"\r?\n> ")

    child.sendline("offer 120")  # shortcut for [Offer: 120]
    child.expect(r"Sending \[Offer: 120\]")
    for _ in range(8):
        if child.expect(PROMPT_OR_END) == 1:
            break
        child.sendline("accept" if "[Accept]" in child.before else "[Offer: 100]")
    else:
        pytest.fail("the match did not end")
    assert child.match.group(1)
    child.expect(r"seat 0 \(you\) seller: outcome [+-]\d\.\d{3}")
    child.expect(r"seat 1 buyer: outcome [+-]\d\.\d{3}")
    child.expect(r"Roles: seat 0=seller, seat 1=buyer")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "Arena rejected" not in child.before


def test_kuhn_poker_to_the_end_with_the_module_entry_point():
    child = spawn(["-m", "maro.agents.human", "kuhn_poker-v1", "--seed", "5", "--name", "tester"])
    child.expect(r"=== kuhn_poker-v1 \| turn \d+ \| you are seat 0, first ===")
    child.expect(r"your card: (Jack|Queen|King)")
    child.expect(r"\r?\n> ")
    child.sendline("[Raise]")
    child.expect(r"Not valid: \[Raise\] is not an action in Kuhn poker")
    child.expect(r"\r?\n> ")
    child.sendline("check")
    for _ in range(6):
        if child.expect(PROMPT_OR_END) == 1:
            break
        child.sendline("call" if re.search(r"Legal actions: \[Call\]", child.before) else "check")
    else:
        pytest.fail("the match did not end")
    child.expect(r"seat 0 \(you\) first: outcome ([+-]\d\.\d{3})")
    mine = float(child.match.group(1))
    child.expect(r"seat 1 second: outcome ([+-]\d\.\d{3})")
    assert mine == pytest.approx(-float(child.match.group(1)))
    child.expect(r"Roles: seat 0=first, seat 1=second")
    child.expect(pexpect.EOF)


def test_an_openspiel_game_from_the_terminal():
    child = spawn(["-m", "maro.agents.human", "openspiel:tic_tac_toe", "--seed", "2", "--name", "tester"])
    child.expect(r"=== openspiel:tic_tac_toe \| turn \d+ \| you are seat 0, player_0 ===")
    child.expect(r"observation:\r?\n    \.\.\.\r?\n    \.\.\.\r?\n    \.\.\.")  # the board, as drawn
    child.expect(r"Legal actions: \[x\(0,0\)\]")
    child.expect(r"\r?\n> ")
    child.sendline("[o(1,1)]")
    child.expect(r"Not valid: \[o\(1,1\)\] is not a legal action now")
    child.expect(r"\r?\n> ")
    child.sendline("x(1,1)")  # shortcut for [x(1,1)]
    child.expect(r"Sending \[x\(1,1\)\]")
    for _ in range(6):
        if child.expect(PROMPT_OR_END) == 1:
            break
        child.sendline(re.search(r"Legal actions: (\[x\([0-9],[0-9]\)\])", child.before).group(1))
    else:
        pytest.fail("the match did not end")
    child.expect(r"seat 0 \(you\) player_0: outcome [+-]\d\.\d{3}")
    child.expect(pexpect.EOF)


def test_shortcuts_become_bracketed_actions_only_when_valid():
    view = {"role": "seller", "history": [{"role": "buyer", "kind": "offer", "price": 40}], "price_max": 200}
    assert check_line("bargaining-v1", view, "accept") == "[Accept]"
    assert check_line("bargaining-v1", view, "offer 55") == "[Offer: 55]"
    with pytest.raises(InvalidAction, match="no action found in 'walk away'"):
        check_line("bargaining-v1", view, "walk away")


def test_view_lines_show_private_facts_and_skip_histories():
    lines = view_lines({"game": "g", "role": "seller", "private": {"cost": 35}, "history": [],
                        "past_hands": [{"hand": 1}], "standing_offer": {"role": "buyer", "price": 51}})
    assert lines == ["  cost: 35", "  standing offer: role=buyer, price=51"]


def test_seat_plan_reads_bots_and_registry_model_names():
    assert seat_plan("bargaining-bot") == {"kind": "bot", "bot": "bargaining-bot", "name": "bargaining-bot"}
    assert seat_plan("model:smollm2") == {"kind": "model", "model": "smollm2", "name": "smollm2"}


def test_hidden_role_games_from_the_terminal_count_seats_from_the_parameters():
    """werewolf-v1 defaults to 6 players and undercover-v1 to 5: more than their minimum."""
    for game, args, seats in (("werewolf-v1", [], 6), ("undercover-v1", ["--players", "4"], 4),
                              ("werewolf-v1", ["--params", '{"players": 7}'], 7)):
        child = spawn(["-m", "maro.learner.cli", "play", "--game", game, "--seed", "1", "--name", "tester", *args])
        child.expect(rf"=== {game} \| turn \d+ \| you are seat 0, ", timeout=30)
        for _ in range(200):
            if child.expect(PROMPT_OR_END, timeout=30) == 1:
                break
            legal = re.findall(r"\[[^\]\r\n]*\]", child.before.rsplit("Legal actions:", 1)[-1])
            concrete = [a for a in legal if not re.search(r"[<>]|: (N|text|SEAT)\]", a)]
            child.sendline(concrete[0] if concrete else "[Say: hello]" if "[Say" in child.before else legal[0])
        else:
            pytest.fail(f"{game} did not end")
        child.expect(r"Roles: (seat 0=[^\r\n]*)")
        roles = re.findall(r"seat (\d+)=", child.match.group(1))
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0
        assert roles == [str(s) for s in range(seats)], (game, args)


def test_maro_play_refuses_a_player_count_the_game_does_not_have():
    from typer.testing import CliRunner

    from maro.learner.cli import app

    for args in (["--game", "werewolf-v1", "--players", "4"], ["--game", "kuhn_poker-v1", "--players", "3"],
                 ["--game", "werewolf-v1", "--players", "6", "--params", '{"players": 7}']):
        result = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["play", *args])
        assert result.exit_code == 2 and "error:" in result.output and "Traceback" not in result.output, result.output


def test_maro_play_command_reaches_the_terminal_client():
    from typer.testing import CliRunner

    from maro.learner.cli import app

    result = CliRunner().invoke(app, ["play", "--help"])
    assert result.exit_code == 0 and "--vs" in result.output and "--match-id" in result.output


async def test_vs_a_registry_model_seats_the_agent_in_this_process(tiny_registry, tmp_path):
    from maro.agents.human import play_human
    from maro.arena.store.matches import MatchStore

    lines = itertools.cycle(["[Check]", "[Call]", "[Bet]", "[Fold]"])
    out = io.StringIO()

    async def read_line(_prompt: str) -> str:
        return next(lines)

    db = str(tmp_path / "play.sqlite")
    result = await play_human(None, "kuhn_poker-v1", "tiny", seed=4, out=out, read_line=read_line, db=db,
                              registry=tiny_registry, name="tester")
    assert "=== match over" in out.getvalue() and result.seat == 0
    store = MatchStore(db)
    (match_id,) = [m.match_id for m in store.list_matches()]
    record = store.get_match(match_id)
    assert record.status == "finished" and [s.name for s in record.seats] == ["tester", "tiny"]
    model_turns = [b for b in store.behaviors([match_id]) if b.seat == 1]
    assert model_turns and all(b.model.startswith("smollm2@") and b.messages for b in model_turns)


def test_vs_that_names_nothing_lists_the_bots_and_models(tmp_path):
    from maro.agents.human import PlayError, opponents

    registry = tmp_path / "models.toml"
    registry.write_text('[models.mini]\nmodel = "openai/gpt-4o-mini"\napi_key_env = "MARO_TEST_UNSET_KEY"\n')
    with pytest.raises(PlayError, match=r"'gpt5' is not a bot of kuhn_poker-v1 \(kuhn-bot.*known: mini"):
        opponents("kuhn_poker-v1", "gpt5", registry)
    with pytest.raises(PlayError, match=r"MARO_TEST_UNSET_KEY, which is not set"):
        opponents("kuhn_poker-v1", "mini", registry)
    closed = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    registry.write_text(f'[models.local]\nmodel = "openai/smollm2"\napi_base = "{closed}"\n')
    with pytest.raises(PlayError, match=r"model 'local': no server answers at .*maro model serve"):
        opponents("kuhn_poker-v1", "local", registry)
    assert opponents("kuhn_poker-v1", None) == (seat_plan(default_bot("kuhn_poker-v1")), None)
    plan, settings = opponents("kuhn_poker-v1", "model:smollm2")
    assert plan == {"kind": "model", "model": "smollm2", "name": "smollm2"} and settings is None


def test_maro_play_refuses_an_unknown_opponent_with_exit_code_2(tmp_path):
    from typer.testing import CliRunner

    from maro.learner.cli import app

    result = CliRunner().invoke(app, ["play", "--game", "kuhn_poker-v1", "--vs", "nobody",
                                      "--registry", str(tmp_path / "none.toml")])
    assert result.exit_code == 2 and "model registry" in result.output and "not found" in result.output


async def test_vs_model_name_runs_a_server_side_seat_from_the_default_registry(tmp_path, monkeypatch):
    from fastapi import FastAPI

    from maro.agents.human import play_human
    from maro.arena.store.matches import MatchStore
    from tests.helpers import serve_in_thread

    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(body: dict):
        return {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "[Call]"}}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}}

    lines = itertools.cycle(["[Bet]", "[Check]", "[Call]", "[Fold]"])

    async def read_line(_prompt: str) -> str:
        return next(lines)

    with serve_in_thread(app) as url:
        registry = tmp_path / "models.toml"
        registry.write_text(f'[models.caller]\nmodel = "openai/caller"\napi_base = "{url}/v1"\n')
        monkeypatch.setenv("MARO_MODELS", str(registry))  # no --registry: the default lookup
        db = str(tmp_path / "play.sqlite")
        await play_human(None, "kuhn_poker-v1", "model:caller", seed=2, out=io.StringIO(), read_line=read_line, db=db)
    store = MatchStore(db)
    (record,) = store.list_matches()
    assert record.status == "finished" and record.seats[1].name == "caller" and record.seats[1].kind == "model"
    replies = [b.completion for b in store.behaviors([record.match_id]) if b.seat == 1]
    assert replies and set(replies) == {"[Call]"}


def test_the_in_process_arena_reads_a_registry_only_for_model_names(tmp_path, monkeypatch):
    from maro.agents.human import PlayError, _arena_models

    monkeypatch.chdir(tmp_path)  # no ./maro-models.toml here
    monkeypatch.setenv("MARO_MODELS", str(tmp_path / "missing.toml"))
    bot = {"kind": "bot", "bot": "kuhn-bot", "name": "kuhn-bot"}
    assert _arena_models(bot, None) is None  # a bot never needs the registry, broken or not
    with pytest.raises(PlayError, match="missing.toml not found"):
        _arena_models({"kind": "model", "model": "smollm2"}, None)
    monkeypatch.delenv("MARO_MODELS")
    models = _arena_models({"kind": "model", "model": "smollm2"}, None)  # the built-in name
    assert models is not None and models.settings("smollm2").api_base == "http://127.0.0.1:8008/v1"
    with pytest.raises(PlayError, match="not a model of the registry"):  # no bare LiteLLM strings
        _arena_models({"kind": "model", "model": "openai/gpt-4o"}, None)
    keyed = tmp_path / "keyed.toml"
    keyed.write_text('[models.mini]\nmodel = "openai/gpt-4o-mini"\napi_key_env = "MARO_TEST_UNSET_KEY"\n')
    monkeypatch.delenv("MARO_TEST_UNSET_KEY", raising=False)
    with pytest.raises(PlayError, match="MARO_TEST_UNSET_KEY, which is not set"):
        _arena_models({"kind": "model", "model": "mini"}, keyed)


def test_a_textarena_game_from_the_terminal():
    child = spawn(["-m", "maro.agents.human", "textarena:KuhnPoker-v0", "--seed", "2", "--name", "tester"])
    child.expect(r"Game: ### Starting round 1 out of 3 rounds. Your card is: '[JQK]'")
    child.expect(r"=== textarena:KuhnPoker-v0 \| turn \d+ \| you are seat 0, player_0 ===")
    child.expect(r"Legal actions: (\[\w+\])  (\[\w+\])")
    legal = child.match.group(1)
    child.expect(r"\r?\n> ")
    child.sendline("[raise]")
    child.expect(r"Arena rejected your action: Action must be \[Check\], \[Bet\], \[Call\], or \[Fold\]")
    child.expect(r"\r?\n> ")
    child.sendline(legal)
    for _ in range(20):
        if child.expect(PROMPT_OR_END) == 1:
            break
        child.sendline(re.search(r"Legal actions: (\[\w+\])", child.before).group(1))
    else:
        pytest.fail("the match did not end")
    child.expect(r"seat 0 \(you\) player_0: outcome [+-]\d\.\d{3}")
    child.expect(pexpect.EOF)
