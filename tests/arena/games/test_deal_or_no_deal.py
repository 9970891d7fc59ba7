"""deal_or_no_deal-v1 rules, dealing, parser, hidden values, value heuristic and the bot."""

import json
import random

import pytest

from maro.agents.bots import get_bot
from maro.arena.engine import InvalidAction, make_game
from maro.arena.games.deal_or_no_deal.rules import DealState
from maro.arena.games.deal_or_no_deal.text import parse_action


@pytest.fixture
def game():
    return make_game("deal_or_no_deal-v1")


def fixed(counts=(1, 2, 3), values=((4, 0, 2), (0, 2, 2))):
    """A known pool: 1 book, 2 hats, 3 balls, each side's values summing to 10."""
    return DealState(counts=counts, values=values)


def play(game, state, *texts):
    for text in texts:
        (seat,) = game.acting(state)
        state, _ = game.step(state, {seat: text})
    return state


def test_an_accepted_deal_pays_each_side_its_own_value_of_its_share(game):
    state = play(game, fixed(), "[Propose: books=1 hats=0 balls=1]", "[Accept]")
    # a takes the book and a ball (4 + 2); b gets 2 hats and 2 balls (4 + 4)
    assert state.finished and state.deal == ((1, 0, 1), (0, 2, 2))
    assert state.outcome == (0.6, 0.8)


def test_the_proposer_of_the_accepted_proposal_takes_what_it_named(game):
    state = play(game, fixed(), "[Propose: books=1 hats=2 balls=3]", "[Propose: books=0 hats=2 balls=1]", "[Accept]")
    assert state.deal == ((1, 0, 2), (0, 2, 1)) and state.outcome == (0.8, 0.6)


def test_walk_and_deadline_pay_the_no_deal_payoff(game):
    assert play(game, fixed(), "[Walk]").outcome == (0.0, 0.0)
    strict = make_game("deal_or_no_deal-v1", {"max_turns": 4, "no_deal_payoff": -0.5})
    state = play(strict, fixed(), *["[Propose: books=1 hats=1 balls=1]"] * 4)
    assert state.finished and state.outcome == (-0.5, -0.5) and "deadline" in state.end_reason


def test_dealing_follows_the_lewis_constraints():
    game = make_game("deal_or_no_deal-v1")
    for seed in range(200):
        state, _ = game.init(seed)
        assert 5 <= sum(state.counts) <= 7 and min(state.counts) >= 1
        a, b = state.values
        assert a != b
        assert all(sum(c * v for c, v in zip(state.counts, vals)) == 10 for vals in (a, b))
        assert all(x + y > 0 for x, y in zip(a, b)) and any(x * y > 0 for x, y in zip(a, b))
    assert game.init(3)[0] == game.init(3)[0]


@pytest.mark.parametrize("text, reason", [
    ("let's split", "no action found"),
    ("[Reject]", "no separate"),
    ("[Propose: books=1 hats=2]", "missing: balls"),
    ("[Propose: books=1 hats=2 balls=9]", "only 3"),
    ("[Propose: books=1 hats=two balls=0]", "not a whole number"),
    ("[Propose: books=1 shoes=1 hats=0 balls=0]", "unknown item"),
    ("[Propose: books=1 books=0 hats=0 balls=0]", "named twice"),
    ("[Propose: all the balls]", "could not read"),
    ("[Walk: now]", "takes no argument"),
    ("[Haggle]", "not an action"),
])
def test_parser_explains_what_was_wrong(text, reason):
    with pytest.raises(InvalidAction, match=reason):
        parse_action(text, (1, 2, 3))


def test_parser_takes_the_last_command_and_reads_loose_spellings():
    assert parse_action("[Accept]? No. [propose: ball: 2, book=1, hats = 0]", (1, 2, 3)) == ("propose", (1, 0, 2))


def test_accepting_without_a_proposal_from_the_other_side_is_refused(game):
    with pytest.raises(InvalidAction, match="no proposal"):
        game.step(fixed(), {0: "[Accept]"})


def test_views_show_only_the_own_values(game):
    state, events = game.init(9)
    for seat in (0, 1):
        seen = json.dumps(game.view(state, seat)) + " ".join(e.text for e in events if e.visible_to(seat))
        own = json.dumps({"your_values": dict(zip(("books", "hats", "balls"), state.values[seat]))})[1:-1]
        assert own in seen and all(secret not in seen for secret in game.hidden_from(state, seat))


def test_value_rises_with_a_better_offer_and_equals_the_outcome_at_the_end(game):
    opened = play(game, fixed(), "[Propose: books=1 hats=2 balls=3]")
    stingy = play(game, opened, "[Propose: books=0 hats=2 balls=3]")
    generous = play(game, opened, "[Propose: books=0 hats=2 balls=0]")
    assert game.value(generous, 0) > game.value(stingy, 0)
    done = play(game, generous, "[Accept]")
    assert [game.value(done, s) for s in (0, 1)] == list(done.outcome)


def test_bot_self_play_mostly_reaches_deals_better_than_no_deal(game):
    bot = get_bot("deal-bot")
    deals, scores = 0, []
    for seed in range(100):
        rng, (state, _) = random.Random(seed), game.init(seed)
        while not state.finished:
            (seat,) = game.acting(state)
            obs = game.observe(state, seat)
            state, _ = game.step(state, {seat: bot.act(obs.view, obs.legal_actions, rng)})
        deals += state.deal is not None
        scores += list(state.outcome)
    assert deals >= 90 and sum(scores) / len(scores) > 0.5


def test_bot_accepts_a_generous_offer_and_keeps_what_it_values():
    game, bot, rng = make_game("deal_or_no_deal-v1"), get_bot("deal-bot"), random.Random(1)
    obs = game.observe(play(game, fixed(), "[Propose: books=1 hats=0 balls=0]"), 1)
    assert bot.act(obs.view, obs.legal_actions, rng) == "[Accept]"  # b would get 2 hats, 3 balls: all it values
    opening = game.observe(fixed(), 0)
    kind, take = parse_action(bot.act(opening.view, opening.legal_actions, rng), (1, 2, 3))
    assert kind == "propose" and take[0] == 1 and take[1] == 0  # a keeps its book, gives away worthless hats
