"""The match store on a real SQLite file."""

import asyncio
import sqlite3

from sqlalchemy import event

from maro.arena.store.matches import MatchStore
from maro.arena.store.records import BehaviorRecord, EventRecord, MatchRecord, SeatRecord, TokenLogprob
from maro.arena.store.schema import hash_token


def make_record(match_id, game="bargaining-v1"):
    return MatchRecord(match_id=match_id, game_id=game, seed=3, params={"max_rounds": 4}, status="created",
                       seats=(SeatRecord(0, "remote", "alice"), SeatRecord(1, "bot", "bot", bot="bargaining-bot")),
                       config={"turn_timeout_s": 5})


def test_records_round_trip_through_a_reopened_file(tmp_path):
    path = tmp_path / "store.sqlite"
    store = MatchStore(path)
    store.create_match(make_record("m1"), {0: hash_token("secret")})
    store.set_roles("m1", ["seller", "buyer"])
    store.append("m1", [EventRecord(0, "start", "hello"), EventRecord(1, "private", "cost 30", private_to=(0,))],
                 [BehaviorRecord("m1", 0, "seller", 0, 0, 0, True, "[Offer: 50]", messages=[{"role": "user", "content": "x"}],
                                 completion="[Offer: 50]", logprobs=(TokenLogprob("[", 58, -0.1),), model="m@v1",
                                 snapshot_before="{}", snapshot_after="{}")])
    store.finish("m1", [0.5, 0.5], "deal at 50")
    store.close()

    again = MatchStore(path)
    record = again.get_match("m1")
    assert record.status == "finished" and record.outcome == (0.5, 0.5) and record.params == {"max_rounds": 4}
    assert [s.role for s in record.seats] == ["seller", "buyer"] and record.seats[1].bot == "bargaining-bot"
    assert [e.private_to for e in record.events] == [(), (0,)]
    (behavior,) = again.behaviors(["m1"])
    assert behavior.logprobs == (TokenLogprob("[", 58, -0.1),) and behavior.messages[0]["content"] == "x"
    assert again.seat_for_token("m1", "secret") == 0 and again.seat_for_token("m1", "guess") is None
    assert again.get_match("nope") is None


def test_tokens_are_stored_only_as_hashes(tmp_path):
    path = tmp_path / "store.sqlite"
    MatchStore(path).create_match(make_record("m1"), {0: hash_token("plain-token-value")})
    dump = "\n".join(sqlite3.connect(path).iterdump())
    assert "plain-token-value" not in dump and hash_token("plain-token-value") in dump


def test_list_matches_filters_by_game_and_status(tmp_path):
    store = MatchStore(f"sqlite:///{tmp_path / 's.sqlite'}")
    for i, game in enumerate(["bargaining-v1", "bargaining-v1", "other-v1"]):
        store.create_match(make_record(f"m{i}", game))
    store.finish("m1", [0.0, 0.0], "walk")
    assert [m.match_id for m in store.list_matches(game_id="bargaining-v1")] == ["m0", "m1"]
    assert [m.match_id for m in store.list_matches(status="finished")] == ["m1"]


def test_a_store_made_before_principals_gains_their_columns_and_keeps_its_matches(tmp_path):
    path = tmp_path / "old.sqlite"
    MatchStore(path).create_match(make_record("m1"))
    with sqlite3.connect(path) as db:  # the schema as it was before identities
        db.execute("ALTER TABLE seats DROP COLUMN principal")
        db.execute("ALTER TABLE matches DROP COLUMN created_by")
    store = MatchStore(path)
    assert [s.name for s in store.get_match("m1").seats] == ["alice", "bot"]
    assert all(s.principal == "" for s in store.get_match("m1").seats)
    store.create_match(make_record("m2"), created_by="alice")
    store.set_seat_player("m2", 0, "Alice", "alice")
    assert store.get_match("m2").seats[0].principal == "alice"


async def test_steps_of_many_matches_ready_at_once_share_one_transaction(tmp_path):
    store = MatchStore(tmp_path / "store.sqlite")
    for i in range(5):
        store.create_match(make_record(f"m{i}"))
    commits = []
    event.listen(store.engine, "commit", lambda _connection: commits.append(1))
    await asyncio.gather(*(store.append_grouped(f"m{i}", [EventRecord(0, "start", f"match {i}")],
                                                finish=([1.0, -1.0], "deal") if i == 4 else None) for i in range(5)))
    assert len(commits) == 1
    assert [store.get_match(f"m{i}").events[0].text for i in range(5)] == [f"match {i}" for i in range(5)]
    assert store.get_match("m4").status == "finished"
    # A step that cannot be written fails alone; the others of its group are written.
    results = await asyncio.gather(store.append_grouped("m0", [EventRecord(1, "say", "still here")]),
                                   store.append_grouped("nope", finish=([0.0, 0.0], "x")), return_exceptions=True)
    assert results[0] is None and isinstance(results[1], KeyError)
    assert [e.text for e in store.get_match("m0").events] == ["match 0", "still here"]
