"""bargaining-v1 rules, parser, views and value heuristic; the engine's shared step flow."""

import json
import random

import pytest

from maro.arena.engine import InvalidAction, MatchOver, NotYourTurn, UnknownGame, make_game
from maro.arena.games.bargaining.text import parse_action


@pytest.fixture
def game():
    return make_game("bargaining-v1")


def play(game, state, *texts):
    for text in texts:
        (seat,) = game.acting(state)
        state, _ = game.step(state, {seat: text})
    return state


def test_accepted_deal_pays_each_side_its_captured_surplus(game):
    state, _ = game.init(7)
    state = play(game, state, "[Offer: 90]", "[Offer: 50]", "[Offer: 70]", "[Accept]")
    surplus = state.value - state.cost
    assert state.finished and state.deal_price == 70
    assert state.outcome == pytest.approx(((70 - state.cost) / surplus, (state.value - 70) / surplus))


def test_walk_away_and_deadline_give_no_deal(game):
    state, _ = game.init(1)
    assert play(game, state, "[Offer: 80]", "[Walk]").outcome == (0.0, 0.0)
    state = play(game, state, *["[Offer: 60]"] * 8)
    assert state.finished and state.outcome == (0.0, 0.0) and "deadline" in state.end_reason


def test_selling_below_cost_is_legal_and_clipped_to_bounds(game):
    state, _ = game.init(4)
    assert state.cost > state.value - state.cost  # so the loss exceeds the whole surplus
    state = play(game, state, "[Offer: 0]", "[Accept]")
    assert state.outcome == (-1.0, 1.0)


@pytest.mark.parametrize("text, reason", [
    ("I'd like to sell", "no action found"),
    ("[Offer: cheap]", "not a whole number"),
    ("[Offer: 999]", "above the maximum"),
    ("[Offer]", "needs a price"),
    ("[Walk: now]", "takes no argument"),
])
def test_parser_explains_what_was_wrong(text, reason):
    with pytest.raises(InvalidAction, match=reason):
        parse_action(text, 200)


def test_parser_takes_the_last_command_so_models_may_think_first():
    assert parse_action("Maybe [Offer: 10]? No: [offer: $1,200]", 5000) == ("offer", 1200)


def test_accept_without_an_offer_from_the_other_side_is_refused_and_changes_nothing(game):
    state, _ = game.init(2)
    with pytest.raises(InvalidAction, match="no offer"):
        game.step(state, {0: "[Accept]"})
    state = play(game, state, "[Offer: 90]", "[Walk]")
    assert state.end_reason == "the buyer walked away"


def test_out_of_turn_and_after_the_end_are_refused(game):
    state, _ = game.init(2)
    with pytest.raises(NotYourTurn):
        game.step(state, {1: "[Offer: 50]"})
    done = play(game, state, "[Walk]")
    with pytest.raises(MatchOver):
        game.validate(done, 1, "[Offer: 50]")


def test_views_never_contain_the_other_sides_valuation(game):
    for seed in range(30):
        state, events = game.init(seed)
        rng = random.Random(seed)
        while not state.finished:
            for seat in (0, 1):
                text = json.dumps(game.observe(state, seat).view)
                hidden = state.value if seat == 0 else state.cost
                private = state.cost if seat == 0 else state.value
                assert f'"{"value" if seat == 0 else "cost"}"' not in text
                assert f"{private}" in text
            (seat,) = game.acting(state)
            state, _ = game.step(state, {seat: rng.choice(["[Offer: 55]", "[Offer: 70]", "[Walk]"])})
        assert all(e.private_to in ((), (0,), (1,)) for e in events)
        assert [e for e in events if e.private_to == (0,)][0].data == {"cost": state.cost}


def test_same_seed_same_deal_and_snapshot_round_trip(game):
    a, _ = game.init(11)
    b, _ = game.init(11)
    assert a == b
    a = play(game, a, "[Offer: 77]", "[Offer: 41]")
    assert game.restore(game.snapshot(a)) == a


def test_value_heuristic_in_bounds_and_equal_to_outcome_at_the_end(game):
    for seed in range(20):
        state, _ = game.init(seed)
        rng = random.Random(seed)
        while not state.finished:
            for seat in (0, 1):
                assert -1.0 <= game.value(state, seat) <= 1.0
            (seat,) = game.acting(state)
            state, _ = game.step(state, {seat: f"[Offer: {rng.randint(0, 150)}]"})
        assert [game.value(state, s) for s in (0, 1)] == list(state.outcome)


def test_higher_standing_price_is_worth_more_to_the_seller(game):
    state, _ = game.init(5)
    low, high = play(game, state, f"[Offer: {state.cost + 5}]"), play(game, state, f"[Offer: {state.value}]")
    assert game.value(high, 0) > game.value(low, 0)
    assert game.value(high, 1) < game.value(low, 1)


def test_bad_params_and_unknown_game():
    with pytest.raises(ValueError):
        make_game("bargaining-v1", {"max_rounds": 0})
    with pytest.raises(ValueError):
        make_game("bargaining-v1", {"colour": "red"})
    with pytest.raises(UnknownGame):
        make_game("chess-v9")


def test_prompt_has_one_worked_example_and_the_private_value(game):
    state, _ = game.init(4)
    obs = game.observe(state, 1 - 0)
    messages = game.game_text.render_prompt(obs.view, ["[Offer: N]"])
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert str(state.value) in messages[0]["content"] and str(state.cost) not in messages[0]["content"]
