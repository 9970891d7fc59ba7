"""OpenSkill ratings on a real SQLite file, fed hand-made match records."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, inspect

from maro.arena.store.matches import MatchStore
from maro.arena.store.ratings import OVERALL, RatingBook, format_table, rating_groups
from maro.arena.store.records import MatchRecord, SeatRecord

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def match(match_id, seats, outcome, game="bargaining-v1", status="finished", minute=0):
    """`seats` as (name, role) pairs."""
    return MatchRecord(match_id=match_id, game_id=game, seed=0, params={}, status=status,
                       seats=tuple(SeatRecord(i, "remote", name, role) for i, (name, role) in enumerate(seats)),
                       outcome=None if outcome is None else tuple(outcome), finished_at=T0 + timedelta(minutes=minute))


def duel(match_id, winner, loser, minute=0):
    return match(match_id, [(winner, "seller"), (loser, "buyer")], [1.0, -1.0], minute=minute)


@pytest.fixture
def book(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'ratings.sqlite'}")
    yield RatingBook(engine)
    engine.dispose()


def by_key(entries):
    return {(e.game_id, e.role, e.player): e for e in entries}


def test_winner_rises_and_loser_falls_in_role_and_overall_tables(book):
    assert book.update(duel("m1", "alice", "bob"))
    entries = by_key(book.table())
    prior = book.model.rating()
    for role in ("seller", OVERALL):
        assert entries[("bargaining-v1", role, "alice")].mu > prior.mu
    for role in ("buyer", OVERALL):
        assert entries[("bargaining-v1", role, "bob")].mu < prior.mu
    assert set(entries) == {("bargaining-v1", r, p) for r, p in
                            [("seller", "alice"), ("buyer", "bob"), (OVERALL, "alice"), (OVERALL, "bob")]}
    assert all(e.matches == 1 and e.sigma < prior.sigma for e in entries.values())
    assert all(e.ordinal == pytest.approx(e.mu - 3 * e.sigma) for e in entries.values())


def test_overall_rating_pools_roles_while_role_ratings_stay_apart(book):
    book.update(duel("m1", "alice", "bob"))
    book.update(match("m2", [("bob", "seller"), ("alice", "buyer")], [-1.0, 1.0], minute=1))
    entries = by_key(book.table())
    assert entries[("bargaining-v1", OVERALL, "alice")].matches == 2
    assert entries[("bargaining-v1", "seller", "alice")].matches == 1
    assert entries[("bargaining-v1", "buyer", "alice")].matches == 1
    assert entries[("bargaining-v1", OVERALL, "alice")].sigma < entries[("bargaining-v1", "seller", "alice")].sigma


def test_update_is_idempotent_and_skips_unfinished_matches(book):
    record = duel("m1", "alice", "bob")
    assert book.update(record) is True
    first = book.table()
    assert book.update(record) is False
    assert book.table() == first
    assert book.update(match("m2", [("a", "seller"), ("b", "buyer")], None, status="running")) is False
    assert book.update(match("m3", [("a", "seller"), ("b", "buyer")], [-1.0, 0.0], status="aborted")) is False
    assert book.table() == first


def test_a_second_book_on_the_same_database_does_not_rate_twice(book):
    assert book.update(duel("m1", "alice", "bob"))
    assert RatingBook(book.engine).update(duel("m1", "alice", "bob")) is False


def test_equal_outcomes_tie(book):
    book.update(match("m1", [("alice", "seller"), ("bob", "buyer")], [0.0, 0.0]))
    alice, bob = (by_key(book.table(role=OVERALL))[("bargaining-v1", OVERALL, p)] for p in ("alice", "bob"))
    assert alice.mu == pytest.approx(bob.mu) and alice.sigma == pytest.approx(bob.sigma)
    assert alice.sigma < book.model.rating().sigma


def test_three_way_ranks_follow_outcomes_with_ties(book):
    free_for_all = RatingBook(book.engine, team_game=lambda game_id: False)
    free_for_all.update(match("m1", [("a", "p"), ("b", "p"), ("c", "p")], [0.5, 0.5, -1.0], game="three-way"))
    mu = {e.player: e.mu for e in book.table(role=OVERALL)}
    assert mu["a"] == pytest.approx(mu["b"]) and mu["a"] > book.model.rating().mu > mu["c"]


def test_team_games_rate_team_mates_together(book):
    roles = ["werewolf", "villager", "seer", "werewolf", "doctor"]
    names = ["w1", "v1", "s1", "w2", "d1"]
    outcome = [1.0 if r == "werewolf" else -1.0 for r in roles]
    book.update(match("m1", list(zip(names, roles)), outcome, game="werewolf-v1"))
    overall = {e.player: e for e in book.table("werewolf-v1", OVERALL)}
    prior = book.model.rating().mu
    assert overall["w1"].mu == pytest.approx(overall["w2"].mu) and overall["w1"].mu > prior
    assert len({round(overall[p].mu, 9) for p in ("v1", "s1", "d1")}) == 1 and overall["v1"].mu < prior
    assert by_key(book.table(role="werewolf"))[("werewolf-v1", "werewolf", "w2")].mu > prior


def test_team_groups_are_equal_outcomes_and_a_team_draw_changes_nothing(book):
    assert rating_groups([1.0, -1.0, 1.0], team_game=True) == ([[0, 2], [1]], [0, 1])
    assert rating_groups([1.0, -1.0, 1.0], team_game=False) == ([[0], [1], [2]], [0, 1, 0])
    book.update(match("m1", [("w", "werewolf"), ("v", "villager"), ("s", "seer")], [0.0] * 3, game="werewolf-v1"))
    prior = book.model.rating()
    assert all(e.matches == 1 and (e.mu, e.sigma) == (prior.mu, prior.sigma) for e in book.table())


def test_self_play_counts_one_match_and_moves_only_role_ratings(book):
    book.update(duel("m1", "model", "model"))
    entries = by_key(book.table())
    overall = entries[("bargaining-v1", OVERALL, "model")]
    assert overall.matches == 1 and overall.mu == pytest.approx(book.model.rating().mu)
    assert entries[("bargaining-v1", "seller", "model")].mu > entries[("bargaining-v1", "buyer", "model")].mu


def test_table_sorts_by_ordinal_and_filters(book):
    for i in range(3):
        book.update(duel(f"m{i}", "alice", "bob", minute=i))
    book.update(match("x1", [("carol", "p"), ("dave", "p")], [1.0, 0.0], game="kuhn_poker-v1"))
    overall = book.table("bargaining-v1", OVERALL)
    assert [e.player for e in overall] == ["alice", "bob"]
    everything = book.table()
    assert [e.ordinal for e in everything] == sorted((e.ordinal for e in everything), reverse=True)
    assert {e.game_id for e in book.table(role="p")} == {"kuhn_poker-v1"}
    assert book.table(game_id="nope") == []


def test_rebuild_from_scratch_equals_incremental_updates(book, tmp_path):
    records = [duel("m1", "alice", "bob", 0), duel("m2", "bob", "carol", 1), duel("m3", "carol", "alice", 2),
               match("m4", [("alice", "seller"), ("bob", "buyer")], [0.0, 0.0], minute=3),
               match("m5", [("x", "seller"), ("y", "buyer")], None, status="running", minute=4)]
    for record in records:
        book.update(record)
    other = RatingBook(create_engine(f"sqlite:///{tmp_path / 'other.sqlite'}"))
    assert other.rebuild(list(reversed(records))) == 4
    assert other.table() == book.table()
    assert book.rebuild(records) == 4 and book.table() == other.table()
    assert book.update(records[0]) is False  # rebuild marks what it rated


def test_match_store_creates_the_ratings_tables(tmp_path):
    store = MatchStore(tmp_path / "store.sqlite")
    assert {"ratings", "rated_matches"} <= set(inspect(store.engine).get_table_names())
    store.close()


def test_format_table_lists_columns_and_rows(book):
    assert format_table([]) == "no ratings yet"
    book.update(duel("m1", "model:openai/smollm2@v0001", "bargaining-bot"))
    lines = format_table(book.table(role=OVERALL)).splitlines()
    assert lines[0].split() == ["player", "game", "role", "ordinal", "mu", "sigma", "matches"]
    assert lines[2].startswith("model:openai/smollm2@v0001") and lines[3].startswith("bargaining-bot")
    assert len(lines) == 4 and lines[2].split()[-1] == "1"
