"""examples/node: the Node.js client plays a full bargaining match against a real arena on loopback."""

import asyncio
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from maro.agents.seats import ServerSeats
from maro.arena.match.runner import RunnerConfig
from maro.arena.transport.grpc.server import ArenaConfig, ArenaServer

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "node"
NODE, NPM = shutil.which("node"), shutil.which("npm")

pytestmark = pytest.mark.skipif(NODE is None or NPM is None, reason="node and npm are needed for the Node.js example")


def _installed_is_current() -> bool:
    # npm writes node_modules/.package-lock.json on every install; newer than the manifests = current.
    marker = EXAMPLE / "node_modules" / ".package-lock.json"
    sources = [p for p in (EXAMPLE / "package.json", EXAMPLE / "package-lock.json") if p.exists()]
    return marker.exists() and all(marker.stat().st_mtime >= p.stat().st_mtime for p in sources)


@pytest.fixture(scope="session")
def node_example() -> Path:
    """examples/node with its dependencies installed; node_modules (gitignored) is reused across sessions."""
    if not _installed_is_current():
        command = [NPM, "ci" if (EXAMPLE / "package-lock.json").exists() else "install", "--no-audit", "--no-fund"]
        done = subprocess.run(command, cwd=EXAMPLE, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:  # almost always an unreachable registry; the example itself is not at fault
            pytest.skip(f"{' '.join(command[1:])} failed in {EXAMPLE}: {done.stderr.strip()[-500:]}")
    return EXAMPLE


@pytest.fixture
async def arena(tmp_path):
    server = ArenaServer(ArenaConfig(port=0, db=str(tmp_path / "m.sqlite"),
                                     runner=RunnerConfig(turn_timeout_s=10.0, join_timeout_s=10.0)), seats=ServerSeats())
    await server.start()
    yield server
    await server.stop()


async def _play(example: Path, address: str, seed: int, *extra: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        NODE, "play.js", "--address", address, "--seed", str(seed), *extra, cwd=example,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    except TimeoutError:
        proc.kill()
        raise
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("seed", [3, 7])
async def test_node_client_plays_a_full_match_and_every_seat0_turn_is_logged(node_example, arena, seed):
    code, out, err = await _play(node_example, arena.address, seed)
    assert code == 0, f"node play.js exited {code}\nstdout:\n{out}\nstderr:\n{err}"
    assert "match over:" in out and re.search(r"seat 0 \(seller\): -?\d", out)

    (match,) = arena.store.list_matches()
    record = arena.store.get_match(match.match_id)
    assert match.match_id in out and record.status == "finished" and record.outcome is not None
    assert [s.kind for s in record.seats] == ["remote", "bot"]

    seat0 = [b for b in arena.store.behaviors([match.match_id]) if b.seat == 0]
    moves = [e for e in record.events if e.seat == 0 and e.kind in ("offer", "accept", "walk")]
    accepted_turns = [int(t) for t in re.findall(r"accepted turn (\d+)", out)]
    assert accepted_turns and [b.turn for b in seat0 if b.accepted] == accepted_turns
    assert len(moves) == len(accepted_turns) and all(b.accepted and not b.fallback for b in seat0)
    assert [b.index for b in seat0] == list(range(len(seat0)))


async def test_node_client_sends_its_key_to_an_arena_with_keys(node_example, tmp_path):
    from maro.arena.auth import add_principal

    keys = tmp_path / "keys.toml"
    key = add_principal(keys, "nodejs", "player")
    server = ArenaServer(ArenaConfig(port=0, db=str(tmp_path / "k.sqlite"), keys=keys,
                                     runner=RunnerConfig(turn_timeout_s=10.0, join_timeout_s=10.0)), seats=ServerSeats())
    await server.start()
    try:
        code, out, err = await _play(node_example, server.address, 5)
        assert code == 1 and "needs a key" in err
        code, out, err = await _play(node_example, server.address, 5, "--key", key)
        assert code == 0 and "match over:" in out, err
        (match,) = server.store.list_matches()
        assert server.store.get_match(match.match_id).seats[0].principal == "nodejs"
    finally:
        await server.stop()
