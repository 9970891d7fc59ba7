"""prisoners_dilemma-v1: pairwise payoffs, chat then sealed moves, parser reasons, defaults, value, bot."""

import random

import pytest

from maro.agents.bots import get_bot
from maro.arena.engine import InvalidAction, NotYourTurn, make_game
from maro.arena.games.prisoners_dilemma.rules import round_payoffs, to_outcome
from maro.arena.games.prisoners_dilemma.text import parse_action

C, D = "[Cooperate]", "[Defect]"


def chat_round(game, state, *texts):
    for say in texts:
        (seat,) = game.acting(state)
        state, _ = game.step(state, {seat: say})
    return state


def test_round_payoffs_average_the_pairwise_dilemma_over_opponents():
    assert round_payoffs(("cooperate", "defect")) == (0.0, 5.0)
    assert round_payoffs(("cooperate", "cooperate", "defect")) == (1.5, 1.5, 5.0)
    assert round_payoffs(("defect",) * 4) == (1.0,) * 4


def test_outcome_maps_mean_round_payoff_from_0_5_onto_minus1_1():
    game = make_game("prisoners_dilemma-v1", {"rounds": 2, "chat_turns": 0})
    state, _ = game.init(0)
    state, _ = game.step(state, {0: C, 1: C})
    state, events = game.step(state, {0: C, 1: D})
    # seat 0 earned 3 + 0, seat 1 earned 3 + 5 over 2 rounds
    assert state.finished and state.outcome == pytest.approx((to_outcome(1.5), to_outcome(4.0)))
    assert state.outcome == pytest.approx((-0.4, 0.6))
    assert "seat 1 defects (5 points)" in events[0].text and "Total payoffs: seat 0 3, seat 1 8" in events[-1].text


def test_chat_goes_in_seat_order_then_all_seats_move_at_once():
    game = make_game("prisoners_dilemma-v1", {"players": 3, "chat_turns": 2, "rounds": 1})
    state, _ = game.init(1)
    order = []
    for _ in range(6):
        (seat,) = game.acting(state)
        order.append(seat)
        state, _ = game.step(state, {seat: "[Say: hello]" if seat else "[Pass]"})
    assert order == [0, 1, 2, 0, 1, 2]
    assert game.acting(state) == frozenset({0, 1, 2}) and game.view(state, 0)["phase"] == "move"
    with pytest.raises(NotYourTurn):
        game.step(state, {0: C, 1: C})  # a sealed phase needs every seat's move together
    assert game.view(state, 2)["history"] == []  # nothing about pending moves exists before the reveal
    state, _ = game.step(state, {0: C, 1: D, 2: C})
    assert state.finished and game.view(state, 0)["history"][0]["moves"] == ["cooperate", "defect", "cooperate"]


@pytest.mark.parametrize("text, phase, reason", [
    ("I cooperate", "move", "no action found"),
    ("[Cooperate]", "chat", "moves come after the chat"),
    ("[Say: hi]", "move", "chat is over"),
    ("[Say:   ]", "chat", "needs some text"),
    ("[Say: " + "a" * 201 + "]", "chat", "at most 200"),
    ("[Defect: now]", "move", "takes no argument"),
])
def test_parser_explains_what_was_wrong(text, phase, reason):
    with pytest.raises(InvalidAction, match=reason):
        parse_action(text, phase)


def test_parser_takes_the_last_command_and_cleans_speech():
    assert parse_action("[Defect]? no: [cooperate]", "move") == ("cooperate", None)
    assert parse_action('[Say: we "all" {win}\nok]', "chat") == ("say", "we all win ok")


def test_default_actions_pass_the_chat_and_cooperate_the_move():
    game = make_game("prisoners_dilemma-v1")
    state, _ = game.init(0)
    assert game.default_action(state, 0) == "[Pass]"
    state = chat_round(game, state, "[Pass]", "[Pass]")
    assert [game.default_action(state, s) for s in (0, 1)] == [C, C]


def test_value_projects_the_last_round_and_equals_the_outcome_at_the_end():
    game = make_game("prisoners_dilemma-v1", {"rounds": 3, "chat_turns": 0})
    state, _ = game.init(0)
    assert game.value(state, 0) == pytest.approx(to_outcome(2.25))
    state, _ = game.step(state, {0: C, 1: D})
    assert game.value(state, 0) == pytest.approx(-1.0) and game.value(state, 1) == pytest.approx(1.0)
    for _ in range(2):
        state, _ = game.step(state, {0: D, 1: D})
    assert [game.value(state, s) for s in (0, 1)] == list(state.outcome)


def test_bot_opens_cooperatively_then_mirrors_the_majority():
    game = make_game("prisoners_dilemma-v1", {"players": 3, "rounds": 3})
    bot, rng = get_bot("prisoners_dilemma-bot"), random.Random(0)
    state, _ = game.init(0)
    assert bot.act(game.view(state, 0), (), rng).startswith("[Say:")
    state = chat_round(game, state, "[Pass]", "[Pass]", "[Pass]")
    assert bot.act(game.view(state, 0), (), rng) == C
    state, _ = game.step(state, {0: C, 1: D, 2: D})
    speech = bot.act(game.view(state, 0), (), rng)
    assert "seat 1, seat 2 defected" in speech and "I will defect" in speech
    state = chat_round(game, state, "[Pass]", "[Pass]", "[Pass]")
    assert bot.act(game.view(state, 0), (), rng) == D
    assert bot.act(game.view(state, 1), (), rng) == C  # seat 1 saw one of two others defect: a tie forgives


def test_prompt_has_rules_one_worked_example_and_the_current_phase():
    game = make_game("prisoners_dilemma-v1")
    state, _ = game.init(0)
    state = chat_round(game, state, "[Say: let us cooperate]", "[Pass]")
    obs = game.observe(state, 1)
    messages = game.game_text.render_prompt(obs.view, obs.legal_actions)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[2]["content"] == C and "Seat 0: let us cooperate" in messages[3]["content"]
    assert "[Cooperate], [Defect]" in messages[3]["content"]


def test_bad_params_are_refused():
    for bad in ({"players": 7}, {"rounds": 0}, {"chat_turns": -1}, {"payoff": 3}):
        with pytest.raises(ValueError):
            make_game("prisoners_dilemma-v1", bad)
