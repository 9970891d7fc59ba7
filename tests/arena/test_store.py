"""The match store on a real SQLite file."""

import sqlite3

from maro.arena.records import BehaviorRecord, EventRecord, MatchRecord, SeatRecord, TokenLogprob
from maro.arena.store import MatchStore, hash_token


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
