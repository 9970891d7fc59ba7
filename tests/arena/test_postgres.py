"""The match store and the arena on a real Postgres server (see conftest.postgres_url)."""

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import grpc
import pytest
from sqlalchemy import event, select
from test_store import make_record

from maro.agents.bots import ScriptedPlayer
from maro.agents.client import create_match, play_seat
from maro.agents.seats import ServerSeats
from maro.arena.match.runner import RunnerConfig
from maro.arena.store.records import BehaviorRecord, EventRecord, SeatRecord, TokenLogprob
from maro.arena.store.schema import Base, hash_token
from maro.arena.transport.grpc.server import ArenaConfig, ArenaServer
from maro.arena.v1 import arena_pb2 as pb
from maro.arena.v1 import arena_pb2_grpc as pb_grpc


def behavior(match_id, seat=0, index=0, **changes):
    record = BehaviorRecord(
        match_id, seat, "seller", index, index, 0, True, "[Offer: 50]",
        messages=[{"role": "system", "content": "Sie verkaufen — ünïcødé ✓"}, {"role": "user", "content": "x"}],
        completion="[Offer: 50]", logprobs=(TokenLogprob("[", 58, -0.1), TokenLogprob("Offer", 9012, -1.25e-7)),
        model="m@v1", snapshot_before='{"turn": 0}', snapshot_after='{"turn": 1}',
    )
    return replace(record, **changes)


def test_records_round_trip_between_store_instances(open_store):
    store = open_store()
    store.create_match(make_record("m1"), {0: hash_token("secret")})
    store.set_roles("m1", ["seller", "buyer"])
    store.set_status("m1", "running")
    store.append("m1", [EventRecord(0, "start", "hello", data={"nested": {"a": [1, 2.5, None]}}),
                        EventRecord(1, "private", "cost 30", seat=0, private_to=(0,))],
                 [behavior("m1"), behavior("m1", accepted=False, attempt=1, reason="no action found", fallback=True)])
    store.finish("m1", [0.5, -0.5], "deal at 50")
    store.close()

    again = open_store()
    record = again.get_match("m1")
    assert record.status == "finished" and record.outcome == (0.5, -0.5) and record.end_reason == "deal at 50"
    assert record.params == {"max_rounds": 4} and record.config == {"turn_timeout_s": 5} and record.seed == 3
    assert [s.role for s in record.seats] == ["seller", "buyer"] and record.seats[1].bot == "bargaining-bot"
    assert [(e.seq, e.seat, e.private_to) for e in record.events] == [(0, None, ()), (1, 0, (0,))]
    assert record.events[0].data == {"nested": {"a": [1, 2.5, None]}}
    assert record.created_at.tzinfo is not None and record.finished_at >= record.created_at
    first, retry = again.behaviors(["m1"])
    assert first == replace(behavior("m1"), id=first.id)
    assert retry.reason == "no action found" and retry.fallback and not retry.accepted and retry.id > first.id
    assert again.seat_for_token("m1", "secret") == 0 and again.seat_for_token("m1", "guess") is None
    assert again.get_match("m1", with_events=False).events == () and again.get_match("nope") is None
    with pytest.raises(KeyError):
        again.set_status("nope", "running")


def test_tokens_are_stored_only_as_hashes(open_store):
    store = open_store()
    store.create_match(make_record("m1"), {0: hash_token("plain-token-value")})
    with store.engine.connect() as db:
        dump = "\n".join(str(row) for table in Base.metadata.sorted_tables for row in db.execute(select(table)))
    assert "plain-token-value" not in dump and hash_token("plain-token-value") in dump


def test_list_matches_filters_by_game_and_status(open_store):
    store = open_store()
    for i, game in enumerate(["bargaining-v1", "bargaining-v1", "other-v1"]):
        store.create_match(make_record(f"m{i}", game))
    store.finish("m1", [0.0, 0.0], "walk")
    assert [m.match_id for m in store.list_matches(game_id="bargaining-v1")] == ["m0", "m1"]
    assert [m.match_id for m in store.list_matches(status="finished")] == ["m1"]
    assert [m.match_id for m in store.list_matches()] == ["m0", "m1", "m2"]
    assert [b.seat for b in store.behaviors(["m0", "m2"])] == []


def test_two_replicas_on_one_database_see_each_others_matches(open_store):
    east, west = open_store(), open_store()
    east.create_match(make_record("from-east"), {0: hash_token("east-token")})
    west.create_match(make_record("from-west"))
    west.append("from-east", [EventRecord(0, "start", "written by west")], [behavior("from-east")])
    east.finish("from-west", [1.0, 0.0], "deal")

    for replica in (east, west):
        assert {m.match_id for m in replica.list_matches()} == {"from-east", "from-west"}
        assert replica.get_match("from-east").events[0].text == "written by west"
        assert replica.get_match("from-west").status == "finished"
        assert replica.seat_for_token("from-east", "east-token") == 0
        assert [b.match_id for b in replica.behaviors(["from-east", "from-west"])] == ["from-east"]


def test_replicas_writing_concurrently_keep_every_behavior(open_store):
    replicas = [open_store() for _ in range(4)]
    replicas[0].create_match(make_record("m1"))

    def write(seat):
        for index in range(10):
            replicas[seat].append("m1", (), [behavior("m1", seat=seat, index=index)])

    with ThreadPoolExecutor(len(replicas)) as pool:
        list(pool.map(write, range(len(replicas))))
    stored = replicas[1].behaviors(["m1"])
    assert sorted((b.seat, b.index) for b in stored) == [(s, i) for s in range(4) for i in range(10)]
    assert len({b.id for b in stored}) == 40


async def test_full_match_over_grpc_is_stored_in_postgres(open_store, postgres_url):
    server = ArenaServer(ArenaConfig(port=0, db=postgres_url, runner=RunnerConfig(turn_timeout_s=5.0, join_timeout_s=5)), seats=ServerSeats())
    await server.start()
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            match_id, tokens = await create_match(channel, "bargaining-v1", 3, [{"kind": "remote"}, {"kind": "bot", "bot": "bargaining-bot"}])
            result = await play_seat(channel, match_id, tokens[0], ScriptedPlayer("bargaining-bot", 1))
            served = await pb_grpc.ArenaStub(channel).GetMatch(pb.GetMatchRequest(match_id=match_id))
    finally:
        await server.stop()
    assert result.outcome is not None and not result.rejections and served.status == "finished"

    replica = open_store()  # another process's view of the same database
    record = replica.get_match(match_id)
    assert record.status == "finished" and list(record.outcome) == pytest.approx(result.outcomes)
    assert [s.role for s in record.seats] == ["seller", "buyer"]
    assert [e.seq for e in record.events] == list(range(len(record.events))) and record.events
    behaviors = replica.behaviors([match_id])
    assert {b.seat for b in behaviors} == {0, 1} and all(b.snapshot_before and b.snapshot_after for b in behaviors)
    assert replica.seat_for_token(match_id, tokens[0]) == 0


# Postgres enforces what SQLite ignores; each case below is accepted by the gRPC API.

def test_a_64_bit_seed_is_stored(open_store):
    """CreateMatchRequest.seed is int64; matches.seed is Integer (int4 on Postgres): needs BigInteger."""
    store = open_store()
    store.create_match(replace(make_record("m1"), seed=2**40))
    assert store.get_match("m1").seed == 2**40


def test_a_long_player_name_is_stored(open_store):
    """SeatPlan.name is unbounded; seats.name is String(128): truncate in create_match or use Text."""
    store = open_store()
    store.create_match(replace(make_record("m1"), seats=(SeatRecord(0, "remote", "x" * 200), SeatRecord(1, "bot", "bot"))))
    assert store.get_match("m1").seats[0].name.startswith("x")


def test_a_completion_with_a_nul_character_is_stored(open_store):
    """Postgres text cannot hold NUL (0x00); a client's action text or a model completion can."""
    store = open_store()
    store.create_match(make_record("m1"))
    store.append("m1", [EventRecord(0, "say", "a\x00b")], [behavior("m1", action_text="[Offer: 5]\x00")])
    assert store.behaviors(["m1"])[0].action_text.startswith("[Offer: 5]")


async def test_steps_written_at_once_share_a_transaction_off_the_event_loop(open_store):
    store = open_store()
    for i in range(20):
        store.create_match(make_record(f"m{i}"))
    commits = []
    event.listen(store.engine, "commit", lambda _connection: commits.append(1))
    await asyncio.gather(*(store.append_grouped(f"m{i}", [EventRecord(0, "start", "x")], [behavior(f"m{i}")])
                           for i in range(20)))
    assert len(commits) == 1 and len(store.behaviors([f"m{i}" for i in range(20)])) == 20
