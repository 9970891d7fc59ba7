"""The arena process under SIGTERM and SIGKILL: acknowledged actions survive, interrupted
matches are marked aborted, never left half-visible to the learner."""

import asyncio
import signal
import subprocess
import sys

import grpc
import pytest

from maro.agents.client import create_match
from maro.arena.store.matches import MatchStore
from maro.arena.v1 import arena_pb2 as pb
from maro.arena.v1 import arena_pb2_grpc as pb_grpc
from tests.helpers import free_port

BOT = {"kind": "bot", "bot": "bargaining-bot"}


def start_server(db, port):
    proc = subprocess.Popen([sys.executable, "-m", "maro.learner.cli", "arena", "serve", "--port", str(port),
                             "--db", str(db)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    while not seen or "arena listening" not in seen[-1]:  # log lines (e.g. the recovery) may come first
        line = proc.stdout.readline()
        assert line, "server exited: " + "".join(seen)
        seen.append(line)
    proc.lines = seen
    return proc


async def play_two_actions(port):
    """Create a match, have the remote seller offer (acknowledged), return the match id."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        match_id, tokens = await create_match(channel, "bargaining-v1", 7, [{"kind": "remote"}, BOT])
        call = pb_grpc.ArenaStub(channel).Play()
        await call.write(pb.PlayRequest(join=pb.Join(match_id=match_id, seat_token=tokens[0])))
        acknowledged = 0
        while acknowledged < 2:
            response = await call.read()
            kind = response.WhichOneof("msg")
            if kind == "turn":
                await call.write(pb.PlayRequest(action=pb.Action(turn=response.turn.turn, text="[Offer: 150]")))
            elif kind == "accepted":
                acknowledged += 1
        call.cancel()
        return match_id


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_interrupted_server_keeps_acknowledged_actions_and_aborts_the_match(tmp_path, sig):
    db, port = tmp_path / "arena.sqlite", free_port()
    proc = start_server(db, port)
    try:
        match_id = asyncio.run(play_two_actions(port))
        proc.send_signal(sig)
        code = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    store = MatchStore(db)
    seller = [b for b in store.behaviors([match_id]) if b.seat == 0 and b.accepted]
    assert [b.action_text for b in seller] == ["[Offer: 150]", "[Offer: 150]"]
    assert [e.text for e in store.get_match(match_id).events].count("The seller offers 150.") == 2
    if sig == signal.SIGTERM:
        assert code == 0
        assert store.get_match(match_id).status == "aborted"  # stopped cleanly, marked on the way out
    else:
        assert code == -signal.SIGKILL
        assert store.get_match(match_id).status == "running"  # what a crash leaves behind...
        proc = start_server(db, port)  # ...until the server starts again
        assert any("marked 1 interrupted matches aborted" in line for line in proc.lines)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert store.get_match(match_id).status == "aborted"
    assert [m.match_id for m in store.list_matches(status="finished")] == []  # nothing half-played for the learner
