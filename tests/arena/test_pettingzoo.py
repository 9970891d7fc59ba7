"""The PettingZoo AEC wrapper, held to PettingZoo's own API and seed tests over every registered
game and some OpenSpiel ones, to the engine's outcomes under random legal play, and to the
invalid-action policy."""

import json
import random

import pytest
from pettingzoo.test import api_test, seed_test

from maro.arena.engine import game_class, game_ids
from maro.arena.pettingzoo_env import ArenaAECEnv, env


def variants():
    """(game id, params) for every registered game, at its smallest and largest player count."""
    for gid in game_ids():
        spec, fields = game_class(gid).spec, game_class(gid).params_model.model_fields
        counts = sorted({spec.min_players, spec.max_players}) if "players" in fields else [None]
        for n in counts:
            yield pytest.param(gid, {} if n is None else {"players": n}, id=gid if n is None else f"{gid}-{n}p")


VARIANTS = list(variants()) + [pytest.param(g, {}, id=g) for g in (
    "openspiel:kuhn_poker", "openspiel:goofspiel(num_cards=4)", "openspiel:tic_tac_toe", "openspiel:liars_dice",
    "textarena:KuhnPoker-v0", "textarena:IndianPoker-v0", "textarena:TicTacToe-v0")]
GARBAGE = "%% not an action %%"

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # api_test nags about non-numpy spaces


def play_legal(e, rng, on_last=None):
    """Run the AEC loop with legal random actions; returns each agent's reward when it terminated."""
    raw = e.unwrapped
    final = {}
    for agent in e.agent_iter(100_000):
        obs, reward, terminated, truncated, info = e.last()
        if on_last:
            on_last(agent, obs, info)
        if terminated or truncated:
            final[agent] = reward
            e.step(None)
            continue
        assert "rejection" not in info and info["acting"]
        e.step(raw.game.random_action(raw.game_state, raw.seat(agent), rng))
    return final


@pytest.mark.parametrize("game_id, params", VARIANTS)
def test_api_test_passes_with_random_text_actions(game_id, params):
    # Random Text samples are invalid: every turn goes through the retries and the fallback.
    api_test(env(game_id, params), num_cycles=100, verbose_progress=False)


@pytest.mark.parametrize("game_id, params", VARIANTS)
def test_api_test_passes_with_mostly_legal_actions(game_id, params):
    e = env(game_id, params)
    raw = e.unwrapped
    rng = random.Random(0)
    turns_seen = []

    def sampler(agent):
        def sample(mask=None, probability=None):
            turns_seen.append(raw.turns)
            if rng.random() < 0.2:
                return GARBAGE
            return raw.game.random_action(raw.game_state, raw.seat(agent), rng)
        return sample

    for agent in raw.possible_agents:
        e.action_space(agent).sample = sampler(agent)
    api_test(e, num_cycles=100, verbose_progress=False)
    assert max(turns_seen) >= 1, "api_test should have sampled after real turns were played"


@pytest.mark.parametrize("game_id, params", VARIANTS)
def test_seed_test_passes(game_id, params):
    seed_test(lambda: env(game_id, params), num_cycles=100)


@pytest.mark.parametrize("game_id, params", VARIANTS)
def test_random_legal_play_through_aec_ends_with_the_engines_outcome(game_id, params):
    for seed in range(20):
        e = env(game_id, params)
        e.reset(seed=seed)
        raw = e.unwrapped
        game = raw.game

        def no_leaks(agent, obs, info):
            seen = "\n".join([json.dumps(json.loads(obs), ensure_ascii=False), info["role"], *info["events"]])
            for secret in game.hidden_from(raw.game_state, raw.seat(agent)):
                assert secret not in seen, f"{agent} sees {secret!r} (seed {seed})"
            assert obs.isascii()
            # the role as the seat knows it (an undercover player may not know it is one)
            assert info["role"] == game.observe(raw.game_state, raw.seat(agent)).role

        final = play_legal(e, random.Random(seed), no_leaks)
        # The same draws straight through the engine give the same match.
        rng = random.Random(seed)
        state, _ = game.init(seed)
        while not state.finished:
            state, _ = game.step(state, {s: game.random_action(state, s, rng) for s in sorted(game.acting(state))})
        assert raw.game_state == state
        assert final == {f"seat_{s}": z for s, z in enumerate(state.outcome)}
        assert e.agents == []


@pytest.mark.parametrize("game_id, params", VARIANTS)
def test_invalid_actions_keep_the_agent_selected_then_the_fallback_applies(game_id, params):
    e = env(game_id, params, max_retries=2)
    e.reset(seed=3)
    raw = e.unwrapped
    game, before = raw.game, raw.game_state
    agent = e.agent_selection
    seat = raw.seat(agent)
    for attempts_left in (2, 1):
        e.step(GARBAGE)
        assert e.agent_selection == agent and raw.game_state is before
        assert e.infos[agent]["rejection"] and e.infos[agent]["attempts_left"] == attempts_left
    e.step(GARBAGE)
    default = game.default_action(before, seat) if game.spec.fallback == "default" else None
    if default is None:
        low = game.spec.outcome_bounds[0]
        assert all(e.terminations.values()) and raw.game_state.end_reason == f"forfeit by seat {seat}"
        assert e.rewards[agent] == low and e._cumulative_rewards[agent] == low
        return
    # The default action stands in; the other acting seats complete the turn.
    joint, rng = {seat: default}, random.Random(0)
    while raw.game_state is before:
        other = raw.seat(e.agent_selection)
        assert other != seat and "rejection" not in e.infos[e.agent_selection]
        joint[other] = game.random_action(before, other, rng)
        e.step(joint[other])
    assert raw.game_state == game.step(before, joint)[0]


def test_bargaining_rejection_carries_the_games_reason_and_zero_retries_forfeit_at_once():
    e = env("bargaining-v1", max_retries=1)
    e.reset(seed=0)
    e.step("[Accept]")  # nothing to accept yet
    assert e.agent_selection == "seat_0"
    assert "no offer from the other side" in e.infos["seat_0"]["rejection"]
    e.step("[Offer: 90]")
    assert e.agent_selection == "seat_1" and "The seller offers 90." in e.infos["seat_1"]["events"]
    e.step(7)  # not text at all
    assert "must be text" in e.infos["seat_1"]["rejection"]

    e = env("bargaining-v1", max_retries=0)
    e.reset(seed=0)
    e.step(GARBAGE)
    assert all(e.terminations.values()) and e.rewards == {"seat_0": -1.0, "seat_1": 0.0}


def test_bargaining_private_events_reach_only_their_seat_and_render_shows_all():
    e = env("bargaining-v1", render_mode="ansi")
    e.reset(seed=5)
    raw = e.unwrapped
    cost, value = raw.game_state.cost, raw.game_state.value
    assert f"Your cost is {cost}." in e.infos["seat_0"]["events"]
    assert not any("Your cost" in t for t in e.infos["seat_1"]["events"])
    assert json.loads(e.observe("seat_1"))["private"] == {"value": value}
    transcript = e.render()
    assert f"[to seat_0] Your cost is {cost}." in transcript and f"[to seat_1] Your value is {value}." in transcript


def test_max_turns_truncates_with_zero_rewards():
    e = env("bargaining-v1", max_turns=1)
    e.reset(seed=0)
    e.step("[Offer: 100]")
    assert all(e.truncations.values()) and not any(e.terminations.values())
    assert set(e.rewards.values()) == {0.0}
    while e.agents:
        e.step(None)


def test_reset_without_a_seed_deals_fresh_matches_and_metadata_names_the_game():
    raw = ArenaAECEnv("bargaining-v1")
    raw.reset()
    first = raw.match_seed
    raw.reset()
    assert raw.match_seed != first
    assert raw.metadata == {"name": "maro_bargaining-v1", "render_modes": ["human", "ansi"], "is_parallelizable": False}
    assert raw.possible_agents == ["seat_0", "seat_1"]
