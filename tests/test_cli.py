"""The `maro` command line."""

import re

import pytest
from typer.testing import CliRunner

from maro.arena.engine import game_class
from maro.learner.cli import app

# A fixed width: Rich wraps messages to the terminal's, which differs from machine to machine.
runner = CliRunner(env={"COLUMNS": "80", "LINES": "25"})


def flat(output: str) -> str:
    """The output with Rich's boxes and line wrapping undone, for asserting on messages."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", output).split())


def test_games_lists_bargaining_with_roles():
    result = runner.invoke(app, ["games"])
    assert result.exit_code == 0 and "bargaining-v1" in result.output and "seller, buyer" in result.output


def test_protogen_check_reports_current_code():
    result = runner.invoke(app, ["dev", "protogen", "--check"])
    assert result.exit_code == 0, result.output


def test_every_subcommand_documents_its_options():
    for command in (["demo"], ["arena", "serve"], ["model", "serve"], ["model", "pull"], ["learn"], ["selfplay"],
                    ["eval"], ["warmstart"], ["agent", "run"]):
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0 and "--help" in result.output, command


def test_arena_serve_refuses_a_broken_model_registry_before_starting(tmp_path):
    broken = tmp_path / "models.toml"
    broken.write_text('[models.x]\nmodel = "openai/x"\napi_key = "sk-in-the-file"\n')
    for path, reason in ((tmp_path / "none.toml", "not found"), (broken, "keys never go in the file")):
        result = runner.invoke(app, ["arena", "serve", "--port", "0", "--db", str(tmp_path / "a.sqlite"),
                                     "--registry", str(path)])
        assert result.exit_code == 2 and reason in flat(result.output), result.output


def test_replay_prints_a_seat_view_and_the_omniscient_view(tmp_path):
    import asyncio

    import grpc

    from maro.agents.bots import ScriptedPlayer
    from maro.agents.client import create_match, play_seat
    from maro.agents.seats import ServerSeats
    from maro.arena.transport.grpc.server import ArenaConfig, ArenaServer

    db = str(tmp_path / "m.sqlite")

    async def play():
        server = ArenaServer(ArenaConfig(port=0, db=db), seats=ServerSeats())
        await server.start()
        async with grpc.aio.insecure_channel(server.address) as channel:
            match_id, tokens = await create_match(channel, "bargaining-v1", 4,
                                                  [{"kind": "remote"}, {"kind": "bot", "bot": "bargaining-bot"}])
            await play_seat(channel, match_id, tokens[0], ScriptedPlayer("bargaining-bot"))
        await server.stop()
        return match_id

    match_id = asyncio.run(play())
    seller = runner.invoke(app, ["replay", match_id, "--db", db, "--seat", "0"])
    assert seller.exit_code == 0 and "Your cost is 35." in seller.output and "Your value is" not in seller.output
    spectator = runner.invoke(app, ["replay", match_id, "--db", db])
    assert "Your cost is 35." in spectator.output and "Your value is 69." in spectator.output
    assert "end: deal at" in spectator.output or "end: " in spectator.output
    assert runner.invoke(app, ["replay", match_id, "--db", db, "--seat", "7"]).exit_code == 2
    assert runner.invoke(app, ["replay", "nope", "--db", db]).exit_code == 1


def test_selfplay_and_eval_from_the_command_line(tmp_path, tiny_model_dir):
    import json

    args = ["selfplay", "--game", "bargaining-v1", "--iterations", "1", "--matches-per-iteration", "2",
            "--model", str(tiny_model_dir), "--run-dir", str(tmp_path / "run"), "--variant", "rae", "--alpha", "0.5"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["learner"]["maro"]["variant"] == "rae" and config["learner"]["maro"]["alpha"] == 0.5
    assert (tmp_path / "run" / "adapters" / "v0001" / "adapter_config.json").exists()
    # Same folder, other settings: refused with the reason, nothing overwritten.
    result = runner.invoke(app, [*args[:-4], "--variant", "maro"])
    assert result.exit_code != 0 and "different run" in flat(result.output)
    bad = tmp_path / "bad.json"
    bad.write_text('{"update": {"lora_layers": 0}}')
    result = runner.invoke(app, [*args[:-4], "--config", str(bad)])
    assert result.exit_code != 0 and "lora_layers" in flat(result.output)
    result = runner.invoke(app, ["eval", "--game", "bargaining-v1", "--adapter", str(tmp_path / "nothing"),
                                 "--model", str(tiny_model_dir), "--run-dir", str(tmp_path / "eval")])
    assert result.exit_code != 0 and "not a PEFT adapter folder" in flat(result.output)


@pytest.mark.parametrize("game_id", ["textarena:KuhnPoker-v0",
                                     pytest.param("openspiel:kuhn_poker", marks=pytest.mark.slow)])
def test_selfplay_and_eval_run_on_adapted_games(tmp_path, tiny_model_dir, game_id):
    import json

    result = runner.invoke(app, ["selfplay", "--game", game_id, "--iterations", "1", "--matches-per-iteration", "2",
                                 "--model", str(tiny_model_dir), "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    adapter = tmp_path / "run" / "adapters" / "v0001"
    assert (adapter / "adapter_config.json").exists()
    result = runner.invoke(app, ["eval", "--game", game_id, "--adapter", str(adapter), "--vs-bot", "--matches", "2",
                                 "--model", str(tiny_model_dir), "--run-dir", str(tmp_path / "eval")])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert summary["games"][game_class(game_id).spec.id]["matches"] == 2


async def test_maro_web_serves_the_pages_with_the_local_model_as_an_opponent(tmp_path, tiny_model_dir):
    """`maro web` end to end: the model server, the arena and its pages as child processes; a
    page's seat plays Kuhn poker over the WebSocket against the model seat until the end."""
    import asyncio
    import html
    import json
    import os
    import signal
    import sys

    import aiohttp

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "maro.learner.cli", "web", "--port", "0", "--model", str(tiny_model_dir),
        "--run-dir", str(tmp_path / "web"), "--runs", str(tmp_path / "runs"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env={**os.environ, "COLUMNS": "80"})
    try:
        address = None
        while address is None:
            line = (await asyncio.wait_for(proc.stdout.readline(), 180)).decode()
            assert line, "maro web exited before serving"
            if line.startswith("web pages on "):
                address = line.split()[-1]
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            async with session.get(f"{address}?game=kuhn_poker-v1") as r:
                lobby = await r.text()
            assert "model smollm2" in lobby and "model smollm2@base" in lobby and "bot kuhn-bot" in lobby
            async with session.post(f"{address}matches", data={"game": "kuhn_poker-v1", "you": "0",
                                                                "seat1": "model:smollm2"}) as r:
                match_id = str(r.url).rsplit("/", 1)[1]
            ws = await session.ws_connect(f"{address}ws/play/{match_id}")
            while True:
                message = await asyncio.wait_for(ws.receive_str(), 120)
                if "The match is over" in message:
                    break
                if "Your turn" in message:
                    turn = int(re.search(r"\(turn (\d+),", message).group(1))
                    if "[Check]" in message:  # typed as a shortcut: checked into `[Check]` before it is sent
                        await ws.send_str(json.dumps({"turn": turn, "text": "check"}))
                    else:  # the first legal action's button
                        first = re.search(r"hx-vals='([^']*)'", message).group(1)
                        await ws.send_str(html.unescape(first))
            await ws.close()
            async with session.get(f"{address}replay/{match_id}?seat=all") as r:
                assert "smollm2" in await r.text() and "finished" in await r.text()
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 60)
