"""Every game's scripted bot plays valid actions to the end from its seat's observation alone,
while no seat ever sees another seat's private facts (the conformance suite's check)."""

import random

import pytest

from maro.agents.bots import bot_names, get_bot
from maro.arena.engine import make_game
from tests.helpers import SEEDS, variants, visible_text


@pytest.mark.parametrize("game_id, params", list(variants()))
def test_scripted_bots_play_valid_actions_to_the_end(game_id, params):
    game = make_game(game_id, params)
    names = bot_names(game_id)
    assert names, f"{game_id} has no scripted bot"
    bot = get_bot(names[0])
    for seed in SEEDS[:15]:
        rng = random.Random(seed)
        state, events = game.init(seed)
        steps = 0
        while not state.finished:
            for observer in range(game.num_players()):
                text = visible_text(game, state, events, observer)
                assert not [s for s in game.hidden_from(state, observer) if s in text], (observer, seed)
            joint = {}
            for seat in sorted(game.acting(state)):
                obs = game.observe(state, seat)
                text = bot.act(obs.view, obs.legal_actions, rng)
                game.game_text.check(obs.view, text)  # what the agent checks before sending
                joint[seat] = text
            state, new = game.step(state, joint)
            events = events + new
            steps += 1
            assert steps < 2000
