"""undercover-v1: the deal, description and vote rules, eliminations, endings, hidden words and roles, bot."""

import json
import random

import pytest

from maro.agents.bots import get_bot
from maro.arena.engine import InvalidAction, make_game, view_entry
from maro.arena.games.undercover.text import parse_action


def rigged(game, seed=0, undercover=(2,), words=("coffee", "tea")):
    """A fresh match with a known deal, so scenarios have known results."""
    state, _ = game.init(seed)
    return state.model_copy(update={"undercover_seats": undercover, "civilian_word": words[0],
                                    "undercover_word": words[1]})


def describe_all(game, state):
    while game.view(state, 0)["phase"] == "describe" and not state.finished:
        (seat,) = game.acting(state)
        state, _ = game.step(state, {seat: "[Describe: it is warm and brown]"})
    return state


def vote(game, state, targets):
    state = describe_all(game, state)
    return game.step(state, {s: f"[Vote: {t}]" for s, t in targets.items()})


def test_deal_gives_civilians_one_word_and_undercovers_the_other_from_the_seed():
    game = make_game("undercover-v1", {"players": 7})
    state, events = game.init(5)
    assert state == game.init(5)[0] and len(state.undercover_seats) == 2
    words = {game.view(state, s)["word"] for s in range(7)}
    assert words == {state.civilian_word, state.undercover_word}
    assert [e.private_to for e in events if e.kind == "word"] == [(s,) for s in range(7)]
    assert len(make_game("undercover-v1").init(5)[0].undercover_seats) == 1
    assert len(make_game("undercover-v1", {"players": 8, "undercovers": 3}).init(0)[0].undercover_seats) == 3


def test_voting_out_the_undercover_wins_for_every_civilian():
    game = make_game("undercover-v1")
    state, events = vote(game, rigged(game), {0: 2, 1: 2, 2: 0, 3: 2, 4: 1})
    assert state.finished and state.winner == "civilians"
    assert state.outcome == (1.0, 1.0, -1.0, 1.0, 1.0)
    assert "seat 2 is out with 3 votes. Seat 2 was an undercover" in events[0].text
    assert '"tea"' in events[-1].text and game.view(state, 0)["words"] == {"civilians": "coffee", "undercovers": "tea"}


def test_undercovers_win_on_parity_and_eliminated_roles_are_revealed():
    game = make_game("undercover-v1", {"players": 4})
    state, events = vote(game, rigged(game), {0: 1, 1: 0, 2: 1, 3: 1})
    assert not state.finished and state.alive == (0, 2, 3)
    assert game.view(state, 2)["revealed"] == {"1": "civilian"} and "Seat 1 was a civilian" in events[0].text
    assert game.view(state, 1)["role"] == "civilian" and game.view(state, 0)["role"] == "unknown"
    state, _ = vote(game, state, {0: 3, 2: 3, 3: 2})
    assert state.finished and state.winner == "undercovers" and state.outcome == (-1.0, -1.0, 1.0, -1.0)


def test_a_tie_eliminates_nobody_and_surviving_max_rounds_wins_for_the_undercovers():
    game = make_game("undercover-v1", {"max_rounds": 2})
    state, events = vote(game, rigged(game), {0: 1, 1: 0, 2: 0, 3: 2, 4: 1})
    assert state.alive == (0, 1, 2, 3, 4) and "tie between seats 0" in events[0].text and "nobody is out" in events[0].text
    assert game.acting(state) == frozenset({0})  # round 2 opens with the descriptions again
    state, _ = vote(game, state, {0: 1, 1: 0, 2: 0, 3: 2, 4: 1})
    assert state.finished and state.winner == "undercovers" and "survived 2 rounds" in state.end_reason


@pytest.mark.parametrize("text, reason", [
    ("[Describe: I drink Coffee daily]", "contains your word"),
    ("[Describe: two coffees please]", "contains your word"),
    ("[Describe: hi]", "at least 3"),
    ("[Vote: 0]", "is not allowed now"),
    ("describe it", "no action found"),
])
def test_descriptions_are_checked_with_a_reason(text, reason):
    game = make_game("undercover-v1")
    state = rigged(game)
    with pytest.raises(InvalidAction, match=reason):
        game.step(state, {0: text})
    assert game.parse(state, 0, "[Describe: nice with tea and a coffeehouse vibe]") == ("describe", "nice with tea and a coffeehouse vibe")


def test_votes_must_name_another_seat_still_in_the_game():
    game = make_game("undercover-v1")
    state, _ = vote(game, rigged(game), {0: 1, 1: 3, 2: 1, 3: 1, 4: 0})
    state = describe_all(game, state)
    for text, reason in [("[Vote: 0]", "cannot vote for yourself"), ("[Vote: 1]", "not in the game"),
                         ("[Vote: nobody]", "not a seat number"), ("[Describe: warm]", "not allowed now")]:
        with pytest.raises(InvalidAction, match=reason):
            game.parse(state, 0, text)
    assert game.parse(state, 0, "I think [Vote: seat 4]") == ("vote", 4)
    assert parse_action("[Vote: 3] no, [vote: 2]", "vote") == ("vote", 2)


def test_default_actions_are_legal_neutral_and_deterministic():
    game = make_game("undercover-v1")
    state = rigged(game)
    assert game.parse(state, 0, game.default_action(state, 0))[0] == "describe"
    state = describe_all(game, state)
    assert [game.default_action(state, s) for s in (0, 3)] == ["[Vote: 1]", "[Vote: 0]"]


def test_views_hold_only_the_own_word_and_no_unrevealed_role():
    game = make_game("undercover-v1")
    state = rigged(game)
    civilian, undercover = json.dumps(game.view(state, 0)), json.dumps(game.view(state, 2))
    assert '"word": "coffee"' in civilian and "tea" not in civilian
    assert '"word": "tea"' in undercover and "coffee" not in undercover
    assert '"role": "unknown"' in undercover and '"undercover"' not in undercover.replace('"undercovers"', "")
    assert view_entry("word", "coffee") in game.hidden_from(state, 2) and view_entry("role", "undercover") in game.hidden_from(state, 2)


def test_value_follows_eliminations_with_the_team_sign():
    game = make_game("undercover-v1")
    state = rigged(game)
    assert game.value(state, 0) == 0.0
    after, _ = vote(game, state, {0: 1, 1: 0, 2: 1, 3: 1, 4: 1})
    assert game.value(after, 0) < 0 < game.value(after, 2)


def test_bot_hints_without_its_word_and_votes_out_the_seat_leaning_to_the_other_word():
    game = make_game("undercover-v1")
    bot, rng = get_bot("undercover-bot"), random.Random(0)
    state = rigged(game)
    for text in ["[Describe: bitter and bean]", "[Describe: a bean, espresso]", "[Describe: leaf and kettle]",
                 "[Describe: espresso, bitter]"]:
        (seat,) = game.acting(state)
        state, _ = game.step(state, {seat: text})
    said = bot.act(game.view(state, 4), (), rng)
    assert game.game_text.check(game.view(state, 4), said) == said and "coffee" not in said.lower()
    state, _ = game.step(state, {4: said})
    assert [bot.act(game.view(state, s), (), rng) for s in (0, 1, 3, 4)] == ["[Vote: 2]"] * 4


def test_bad_params_are_refused():
    for bad in ({"players": 3}, {"players": 4, "undercovers": 2}, {"word_pairs": []},
                {"word_pairs": [["tea", "tea"]]}, {"word_pairs": [["Tea!", "coffee"]]}, {"max_rounds": 0}):
        with pytest.raises(ValueError):
            make_game("undercover-v1", bad)
