"""OpenSpiel's games at our table: ids, refusals, the exact mapping (chance from the match's seed,
snapshots, returns), a seat's view made of its own OpenSpiel strings only, and matches played
through a real arena server by bots (the conformance suite covers every supported game too)."""

import random

import grpc
import pytest

from maro.agents.bots import bot_names, get_bot
from maro.agents.client import create_match, play_seat
from maro.arena.engine import GAMES, InvalidAction, UnknownGame, game_class, make_game
from maro.arena.games.openspiel import catalogue, supported
from tests.helpers import random_match as play

pyspiel = pytest.importorskip("pyspiel")

ARENA_GAMES = ["openspiel:kuhn_poker", "openspiel:leduc_poker", "openspiel:liars_dice", "openspiel:tic_tac_toe",
               "openspiel:goofspiel(num_cards=4)", "openspiel:bargaining", "openspiel:matrix_pd",
               "openspiel:blotto", "openspiel:connect_four", "openspiel:negotiation", "openspiel:hearts"]


def test_ids_are_canonical_and_carry_parameters():
    assert game_class("openspiel:kuhn_poker()") is game_class("openspiel:kuhn_poker")
    goof = game_class("openspiel:goofspiel(num_cards=4)")
    assert goof.spec.id == "openspiel:goofspiel(num_cards=4)" and goof.spec.fallback == "default"
    assert goof.spiel_game.get_parameters()["num_cards"] == 4
    three = make_game("openspiel:kuhn_poker(players=3)")
    assert three.num_players() == 3 and three.spec.roles == ("player_0", "player_1", "player_2")
    assert len(list(supported())) >= 60


@pytest.mark.parametrize("game_id, reason", [
    ("openspiel:chess", "more than the arena's 1000"),
    ("openspiel:2048", "one-player"),
    ("openspiel:mfg_garnet", "mean_field dynamics"),
    ("openspiel:efg_game", "cannot be loaded without parameters"),
    ("openspiel:efg_game(filename=/etc/passwd)", "names a file"),
    ("openspiel:goofspiel(num_cards=100000)", "outside"),
    ("openspiel:no_such_game", "has no game"),
    ("openspiel:", "names a game"),
    ("openspiel:kuhn_poker(players=", "not an OpenSpiel game string"),
    ("openspiel:" + "x" * 300, "at most 200"),
    ("openspiel:kuhn_poker(players=1)", "cannot load"),
])
def test_unsupported_ids_are_refused_with_the_reason(game_id, reason):
    with pytest.raises(UnknownGame, match=reason):
        game_class(game_id)


def test_the_catalogue_lists_supported_and_refused_games():
    entries = {e.id: e for e in catalogue()}
    assert not entries["openspiel:leduc_poker"].refused and entries["openspiel:leduc_poker"].players == "2"
    assert "more than the arena's" in entries["openspiel:chess"].refused
    assert [e.id for e in GAMES.catalogue("openspiel")] == sorted(entries)


def test_chance_comes_from_the_match_seed_and_snapshots_replay_exactly():
    game = make_game("openspiel:leduc_poker")
    deals = set()
    for seed in range(12):
        first, _ = play(game, seed)
        again, _ = play(game, seed)
        assert first == again  # same seed, same moves: same states
        deals.add(first[0].moves[:2])
        for state in first:
            restored = game.restore(game.snapshot(state))
            fresh = make_game("openspiel:leduc_poker").spiel_state(restored)  # no cache: a replay
            assert str(fresh) == str(game.spiel_state(state))
    assert len(deals) > 5  # the seed chooses the deal


def test_returns_are_scaled_into_the_outcome_bounds():
    game = make_game("openspiel:kuhn_poker")
    for seed in range(20):
        states, _ = play(game, seed)
        final = states[-1]
        returns = game.spiel_state(final).returns()
        assert final.outcome == tuple(r / 2 for r in returns)  # kuhn's returns lie in [-2, 2]


def test_actions_are_bracketed_texts_and_bad_ones_are_refused():
    game = make_game("openspiel:tic_tac_toe")
    state, _ = game.init(0)
    assert game.legal_actions(state, 0)[:2] == ("[x(0,0)]", "[x(0,1)]")
    state, events = game.step(state, {0: "I take the centre: [ X(1,1) ]"})
    assert events[-1].text == "Player 0 plays x(1,1)." and not events[-1].private_to
    with pytest.raises(InvalidAction, match=r"\[o\(1,1\)\] is not a legal action now; legal: \[o\(0,0\)\]"):
        game.step(state, {1: "[o(1,1)]"})
    with pytest.raises(InvalidAction, match="no action found"):
        game.step(state, {1: "the corner"})
    # texts with brackets of their own are written with parentheses
    nego = make_game("openspiel:negotiation")
    state, _ = nego.init(4)
    (seat,) = nego.acting(state)
    assert all("[" not in a[1:-1] for a in nego.legal_actions(state, seat))
    assert nego.view(state, seat)["legal"][0][1].startswith("Proposal: (")


@pytest.mark.parametrize("game_id", [g for g in supported()
                                     if game_class(g).spiel_game.get_type().information.name
                                     == "IMPERFECT_INFORMATION"][:25])
def test_a_seat_sees_nothing_but_its_own_openspiel_strings(game_id):
    """Two states a seat cannot tell apart (same information state and observation) give it the
    same view, apart from its legal actions (the seat knows them) and, at the end, the returns
    (public once the game is over); the moves of others reach it only as 'moved'."""
    game = make_game(game_id)
    seen: dict[tuple, dict] = {}
    for seed in range(6):
        states, events = play(game, seed)
        for state in states:
            for seat in range(game.num_players()):
                view = {k: v for k, v in game.view(state, seat).items() if k not in ("legal", "end_reason")}
                key = (seat, view.get("information_state"), view.get("observation"), view["finished"])
                assert seen.setdefault(key, view) == view, (game_id, key)
        for event in events:
            if event.kind == "move":
                assert event.private_to == (event.seat,) or event.seat is None and event.private_to
            assert event.kind != "chance"


async def _bots_finish(arena, game_id: str, seed: int):
    n = make_game(game_id).num_players()
    bot = bot_names(game_id)[-1]
    seats = [{"kind": "remote", "name": "random"}] + [{"kind": "bot", "bot": bot}] * (n - 1)
    async with grpc.aio.insecure_channel(arena.address) as channel:
        match_id, tokens = await create_match(channel, game_id, seed, seats)

        class Random:
            rng = random.Random(seed)

            async def act(self, prompt, rejection):
                from maro.arena.match.messages import Submission

                view = prompt.observation.view
                assert all(key in ("game", "role", "seat", "players", "information_state", "observation", "legal",
                                   "finished", "end_reason") for key in view)
                return Submission(prompt.turn, get_bot("openspiel-random").act(view, prompt.legal_actions, self.rng))

        result = await play_seat(channel, match_id, tokens[0], Random())
    return arena.store.get_match(match_id), result


@pytest.mark.parametrize("game_id", ARENA_GAMES)
async def test_bots_and_a_remote_seat_play_adapted_games_through_the_arena(arena, game_id):
    record, result = await _bots_finish(arena, game_id, 3)
    assert record.status == "finished" and result.outcome is not None, record.end_reason
    assert record.game_id == game_class(game_id).spec.id
    assert not result.rejections
    assert all(-1 <= z <= 1 for z in record.outcome)


def test_the_cfr_bot_plays_only_small_poker_and_its_policy_is_near_equilibrium():
    from open_spiel.python.algorithms import exploitability

    from maro.agents.bots.openspiel import cfr_policy

    assert bot_names("openspiel:tic_tac_toe") == ["openspiel-random"]
    assert "openspiel-cfr" in bot_names("openspiel:leduc_poker")
    assert "two-player" in get_bot("openspiel-cfr").refusal("openspiel:kuhn_poker(players=3)")
    kuhn = game_class("openspiel:kuhn_poker").spiel_game
    assert pyspiel.nash_conv(kuhn, cfr_policy("openspiel:kuhn_poker")) < 0.01
    assert exploitability  # the Python side of OpenSpiel is installed too


def test_the_cfr_bot_beats_the_random_bot_at_leduc():
    game = make_game("openspiel:leduc_poker")
    cfr, rand = get_bot("openspiel-cfr"), get_bot("openspiel-random")
    total = []
    for seed in range(300):
        rng = random.Random(seed)
        state, _ = game.init(seed)
        cfr_seat = seed % 2
        while not state.finished:
            (seat,) = game.acting(state)
            obs = game.observe(state, seat)
            bot = cfr if seat == cfr_seat else rand
            state, _ = game.step(state, {seat: bot.act(obs.view, obs.legal_actions, rng)})
        total.append(state.outcome[cfr_seat])
    mean = sum(total) / len(total)
    sd = (sum((z - mean) ** 2 for z in total) / (len(total) - 1)) ** 0.5
    assert mean - 2 * sd / len(total) ** 0.5 > 0, mean
