"""The match store on a real SQLite file."""

import sqlite3

from maro.arena.store.matches import MatchStore, hash_token
from maro.arena.store.records import BehaviorRecord, EventRecord, MatchRecord, SeatRecord, TokenLogprob


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
