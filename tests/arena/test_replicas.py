"""Arena replicas sharing one store act as one arena: a lobby over every replica's open seats,
Play and Spectate redirected to the replica that plays a match, leases whose expiry aborts a
dead replica's matches. Two real `maro arena serve` processes on one real Postgres, and the
store's part on SQLite."""

import asyncio
import signal
import subprocess
import sys
import time

import grpc
import pytest
from test_store import make_record

from maro.agents.bots import ScriptedPlayer
from maro.agents.client import GrpcArenaClient, create_match, open_channel, play_seat, replica_address
from maro.arena.store.matches import MatchStore
from maro.arena.transport.grpc.server import ArenaConfig, ArenaServer
from maro.arena.v1 import arena_pb2 as pb
from maro.arena.v1 import arena_pb2_grpc as pb_grpc
from tests.helpers import free_port

OPEN, BOT, REMOTE = {"kind": "open"}, {"kind": "bot", "bot": "bargaining-bot"}, {"kind": "remote"}
LEASE_S = 2.0


class Replica:
    """`maro arena serve` in its own process, as a replica of the arena on `db`."""

    def __init__(self, name: str, db: str, lease_s: float = LEASE_S):
        self.name, self.port = name, free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "maro.learner.cli", "arena", "serve", "--port", str(self.port), "--db", db,
             "--replica-id", name, "--lease", str(lease_s), "--join-timeout", "120"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        seen = []
        while not seen or "arena listening" not in seen[-1]:
            line = self.proc.stdout.readline()
            assert line, f"replica {name} exited: " + "".join(seen)
            seen.append(line)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.stdout.close()


@pytest.fixture
def replicas(open_store, postgres_url):
    started: list[Replica] = []

    def _start(name: str) -> Replica:
        started.append(Replica(name, postgres_url))
        return started[-1]

    yield _start
    for replica in started:
        replica.stop()


async def find(channel, game_id="bargaining-v1") -> pb.SeatAssignment:
    return await pb_grpc.ArenaStub(channel).FindSeat(pb.FindSeatRequest(game_id=game_id), timeout=10)


async def test_a_lobby_seat_of_one_replica_is_played_through_another(replicas, open_store):
    a, b = replicas("a"), replicas("b")
    store = open_store()
    async with open_channel(a.address) as at_a, open_channel(b.address) as at_b:
        match_id, _ = await create_match(at_a, "bargaining-v1", 3, [OPEN, BOT])
        seat = await find(at_b)  # b's lobby hands out a's seat, and says where a is
        assert (seat.match_id, seat.seat, seat.address) == (match_id, 0, a.address)
        with pytest.raises(grpc.aio.AioRpcError) as none_left:
            await find(at_a)
        assert none_left.value.code() == grpc.StatusCode.UNAVAILABLE

        # A join at b is refused with a's address; nothing was played.
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await play_seat(at_b, match_id, seat.seat_token, ScriptedPlayer("bargaining-bot", 1))
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert replica_address(refused.value) == a.address and "replica 'a'" in refused.value.details()
        spectate = pb_grpc.ArenaStub(at_b).Spectate(pb.SpectateRequest(match_id=match_id))
        with pytest.raises(grpc.aio.AioRpcError) as watched:
            await spectate.read()
        assert replica_address(watched.value) == a.address

        # Our client follows the refusal to a and plays the match to its end there.
        result = await play_seat(at_b, match_id, seat.seat_token, ScriptedPlayer("bargaining-bot", 1),
                                 connect=open_channel)
        assert result.outcome is not None and result.seat == 0

        # GrpcArenaClient goes straight to the replica the lobby named.
        second, _ = await create_match(at_a, "bargaining-v1", 4, [BOT, OPEN])
        client = GrpcArenaClient(at_b, connect=open_channel, address=b.address)
        try:
            found, number, token = await client.find_seat("bargaining-v1")
            assert (found, number) == (second, 1)
            result = await client.play_seat(second, token, ScriptedPlayer("bargaining-bot", 2))
            assert result.outcome is not None and list(client._replicas) == [a.address]
        finally:
            await client.aclose()
    assert store.get_match(match_id).status == store.get_match(second).status == "finished"
    assert {r.id: r.address for r in store.leases.replicas()} == {"a": a.address, "b": b.address}


async def test_a_killed_replicas_matches_are_aborted_by_another_once_its_lease_runs_out(replicas, open_store):
    a, b = replicas("a"), replicas("b")
    store = open_store()
    async with open_channel(a.address) as at_a, open_channel(b.address) as at_b:
        waiting, tokens = await create_match(at_a, "bargaining-v1", 5, [REMOTE, BOT])
        lobby, _ = await create_match(at_a, "bargaining-v1", 6, [OPEN, BOT])
        a.proc.send_signal(signal.SIGKILL)
        assert a.proc.wait(timeout=20) == -signal.SIGKILL
        last_heartbeat = {r.id: r.heartbeat_at for r in store.leases.replicas()}["a"]
        deadline = time.monotonic() + 30
        while store.get_match(waiting, with_events=False).status != "aborted":
            assert time.monotonic() < deadline, "b never aborted a's match"
            await asyncio.sleep(0.2)
        for match_id in (waiting, lobby):
            record = store.get_match(match_id, with_events=False)
            assert record.status == "aborted" and "lease" in record.end_reason
            assert (record.finished_at - last_heartbeat).total_seconds() >= LEASE_S  # not before the lease ran out
        assert [r.id for r in store.leases.replicas()] == ["b"]
        with pytest.raises(grpc.aio.AioRpcError) as gone:  # a's open seat left the lobby with it
            await find(at_b)
        assert gone.value.code() == grpc.StatusCode.UNAVAILABLE
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await play_seat(at_b, waiting, tokens[0], ScriptedPlayer("bargaining-bot", 1), connect=open_channel)
        assert ended.value.code() == grpc.StatusCode.FAILED_PRECONDITION and replica_address(ended.value) is None
    assert store.list_matches(status="finished") == []


# --- the store's part, on SQLite ------------------------------------------------------------

def test_two_stores_taking_lobby_seats_never_take_the_same_one(tmp_path):
    one, two = MatchStore(tmp_path / "arena.sqlite"), MatchStore(tmp_path / "arena.sqlite")
    one.leases.heartbeat("a", "host-a:1", register=True)
    for i in range(3):
        one.create_match(make_record(f"m{i}"), replica="a", open_seats=[0])
    taken = [store.leases.take_seat("bargaining-v1") for store in (one, two, two, one)]
    assert [t.match_id for t in taken[:3]] == ["m0", "m1", "m2"] and taken[3] is None
    assert all(t.address == "host-a:1" and t.replica == "a" for t in taken[:3])
    assert two.seat_for_token("m1", taken[1].token) == 0 and one.leases.lobby() == []
    assert one.get_match("m1").seats[0].kind == "remote"  # the record is what it was


def test_reaping_a_replica_aborts_its_live_matches_only_and_ends_its_lease(tmp_path):
    store = MatchStore(tmp_path / "arena.sqlite")
    store.leases.heartbeat("dead", "d:1", register=True)
    store.create_match(make_record("live"), replica="dead", open_seats=[0])
    store.create_match(make_record("done"), replica="dead")
    store.finish("done", [1.0, -1.0], "deal")
    time.sleep(0.05)
    store.leases.heartbeat("alive", "a:1", register=True)
    store.create_match(make_record("other"), replica="alive")
    assert store.leases.reap(60.0, "aborted: lease") == {}
    assert store.leases.reap(0.04, "aborted: lease") == {"dead": 1}
    assert [store.get_match(m).status for m in ("live", "done", "other")] == ["aborted", "finished", "created"]
    assert store.leases.lobby() == [] and [r.id for r in store.leases.replicas()] == ["alive"]
    assert store.leases.heartbeat("dead", "d:1") is False  # its next heartbeat learns it was taken for dead
    store.finish("live", [0.5, -0.5], "a late end")  # ... and a late write does not undo the abort
    store.set_status("live", "running")
    assert store.get_match("live").status == "aborted" and store.get_match("live").outcome is None
    with pytest.raises(KeyError):
        store.finish("nope", [0.0, 0.0], "x")


async def test_a_replica_that_lost_its_lease_stops_its_matches_and_takes_a_new_lease(tmp_path):
    db = str(tmp_path / "arena.sqlite")
    a = ArenaServer(ArenaConfig(port=0, db=db, replica_id="a", lease_s=1.0))
    b = ArenaServer(ArenaConfig(port=0, db=db, replica_id="b", lease_s=1.0))
    await a.start()
    await b.start()
    try:
        async with open_channel(a.address) as channel:
            match_id, _ = await create_match(channel, "bargaining-v1", 3, [REMOTE, REMOTE])
        a.service._leasing.cancel()  # a stalls: no heartbeats for longer than the lease
        deadline = time.monotonic() + 20
        while b.store.get_match(match_id, with_events=False).status != "aborted":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        assert match_id in a.service.live  # a has not noticed yet
        a.service._leasing = asyncio.create_task(a.service._keep_lease())  # a wakes up
        while a.service.live:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        assert sorted(r.id for r in b.store.leases.replicas()) == ["a", "b"]
        assert b.store.get_match(match_id).end_reason.endswith("lease (1s)")
    finally:
        await a.stop()
        await b.stop()


async def test_workers_share_one_port_and_play_each_others_lobby_seats(tmp_path):
    db, port = tmp_path / "arena.sqlite", free_port()
    proc = subprocess.Popen([sys.executable, "-m", "maro.learner.cli", "arena", "serve", "--port", str(port),
                             "--db", str(db), "--workers", "2", "--replica-id", "host"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        while sum("arena listening on" in line for line in lines) < 2:
            lines.append(proc.stdout.readline())
            assert lines[-1], f"the arena exited: {lines}"
        assert len(lines) == 2, lines  # nothing else: no worker failed and was restarted
        created = []
        for seed in range(16):  # a channel each: new connections, spread over the workers by the kernel
            async with open_channel(f"127.0.0.1:{port}") as channel:
                created.append((await create_match(channel, "bargaining-v1", seed, [OPEN, BOT]))[0])
        store = MatchStore(db)
        owners = {store.leases.owner(m)[0] for m in created}
        assert owners == {"host-0", "host-1"}
        async with open_channel(f"127.0.0.1:{port}") as channel:
            client = GrpcArenaClient(channel, connect=open_channel, address=f"127.0.0.1:{port}")
            try:
                for _ in created:
                    match_id, _, token = await client.find_seat("bargaining-v1")
                    result = await client.play_seat(match_id, token, ScriptedPlayer("bargaining-bot", 1))
                    assert result.outcome is not None
            finally:
                await client.aclose()
        assert sorted(r.match_id for r in store.list_matches(status="finished")) == sorted(created)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert "arena stopped" in proc.stdout.read()
    assert store.leases.replicas() == []  # both workers gave up their leases on the way out


def test_workers_refuse_what_one_process_must_serve():
    with pytest.raises(ValueError, match="web pages"):
        ArenaConfig(workers=2, web_port=0)
    with pytest.raises(ValueError, match="advertise"):
        ArenaConfig(workers=2, advertise="arena.example:50051")
    with pytest.raises(ValueError):
        ArenaConfig(workers=65)
