"""kuhn_poker-v1 rules, parser, hidden cards, value heuristic and the equilibrium bot."""

import json
import random

import pytest

from maro.agents.bots import get_bot
from maro.arena.engine import InvalidAction, make_game, view_entry
from maro.arena.games.kuhn_poker.rules import Hand, KuhnState
from maro.arena.games.kuhn_poker.text import parse_action

JACK, QUEEN, KING = 0, 1, 2


def dealt(game, first, second):
    """A fresh one-hand state with chosen cards (seat 0 opens)."""
    return KuhnState(hands=(Hand(cards=(first, second), opener=0),))


def play(game, state, *texts):
    events = []
    for text in texts:
        (seat,) = game.acting(state)
        state, new = game.step(state, {seat: text})
        events += new
    return state, events


@pytest.mark.parametrize("cards, moves, outcome", [
    ((KING, JACK), ["[Check]", "[Check]"], (0.5, -0.5)),         # antes only: 1 chip
    ((JACK, KING), ["[Bet]", "[Call]"], (-1.0, 1.0)),            # called bet: 2 chips
    ((JACK, KING), ["[Bet]", "[Fold]"], (0.5, -0.5)),            # the bluff wins the ante
    ((QUEEN, KING), ["[Check]", "[Bet]", "[Fold]"], (-0.5, 0.5)),
    ((KING, QUEEN), ["[Check]", "[Bet]", "[Call]"], (1.0, -1.0)),
])
def test_each_betting_line_pays_chips_over_two(cards, moves, outcome):
    game = make_game("kuhn_poker-v1")
    state, _ = play(game, dealt(game, *cards), *moves)
    assert state.finished and state.outcome == outcome


def test_showdown_reveals_both_cards_but_a_fold_keeps_them_hidden():
    game = make_game("kuhn_poker-v1")
    shown, events = play(game, dealt(game, KING, QUEEN), "[Bet]", "[Call]")
    assert game.hidden_from(shown, 0) == [] and "Hand 1: second holds the Queen" in events[-1].text
    assert "Hand 1: second holds the Queen" in json.dumps(game.view(shown, 0))
    folded, events = play(game, dealt(game, KING, QUEEN), "[Bet]", "[Fold]")
    assert "Queen" not in json.dumps(game.view(folded, 0)) + " ".join(e.text for e in events)
    assert view_entry("your_card", "Queen") in game.hidden_from(folded, 0)


def test_several_hands_alternate_the_opener_and_sum_the_chips():
    game = make_game("kuhn_poker-v1", {"rounds": 3})
    state, _ = game.init(4)
    for hand in range(3):
        assert len(state.hands) == hand + 1 and game.acting(state) == {hand % 2}
        state, _ = play(game, state, "[Bet]", "[Fold]")  # the opener wins 1 chip each hand
    assert state.finished and state.net == 1 and state.outcome == (1 / 6, -1 / 6)


@pytest.mark.parametrize("text, to_call, reason", [
    ("I raise! [Raise]", 0, "not an action"),
    ("hmm", 0, "no action found"),
    ("[Bet: 2]", 0, "takes no argument"),
    ("[Call]", 0, "nobody has bet"),
    ("[Check]", 1, "answer it with"),
])
def test_parser_explains_what_was_wrong(text, to_call, reason):
    game = make_game("kuhn_poker-v1")
    with pytest.raises(InvalidAction, match=reason):
        game.game_text.check({"to_call": to_call}, text)


def test_parser_takes_the_last_command():
    assert parse_action("[Bet] is tempting, but no: [check]") == "check"


def test_value_follows_the_card_and_equals_the_outcome_at_the_end():
    game = make_game("kuhn_poker-v1")
    state = dealt(game, KING, JACK)
    assert game.value(state, 0) == 0.5 and game.value(state, 1) == -0.5
    bet, _ = play(game, state, "[Bet]")
    assert game.value(bet, 0) > game.value(state, 0)
    done, _ = play(game, bet, "[Fold]")
    assert [game.value(done, s) for s in (0, 1)] == list(done.outcome)


def test_bot_bets_and_calls_kings_and_folds_jacks_to_a_bet():
    game, bot, rng = make_game("kuhn_poker-v1"), get_bot("kuhn-bot"), random.Random(0)
    for _ in range(30):
        king_open = game.observe(dealt(game, KING, JACK), 0)
        assert bot.act(king_open.view, king_open.legal_actions, rng) == "[Bet]"
        facing, _ = play(game, dealt(game, KING, JACK), "[Bet]")
        obs = game.observe(facing, 1)
        assert bot.act(obs.view, obs.legal_actions, rng) == "[Fold]"
        facing, _ = play(game, dealt(game, JACK, KING), "[Bet]")
        obs = game.observe(facing, 1)
        assert bot.act(obs.view, obs.legal_actions, rng) == "[Call]"


def test_bot_self_play_is_close_to_the_game_value():
    game, bot = make_game("kuhn_poker-v1"), get_bot("kuhn-bot")
    total = 0.0
    for seed in range(3000):
        rng, (state, _) = random.Random(seed), game.init(seed)
        while not state.finished:
            (seat,) = game.acting(state)
            obs = game.observe(state, seat)
            state, _ = game.step(state, {seat: bot.act(obs.view, obs.legal_actions, rng)})
        total += state.outcome[0]
    # The first player's equilibrium value is -1/18 chip per hand, i.e. -1/36 in outcome units.
    assert abs(total / 3000 + 1 / 36) < 0.03
