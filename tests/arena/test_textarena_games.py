"""TextArena's environments at our table: ids and refusals, the mapping (per-seat messages only,
TextArena's invalid moves as our refusals, clipped rewards, the match's own generators), a
deliberately broken environment that aborts its own match only, and matches played through a
real arena server by bots and a remote seat (the conformance suite covers fifteen environments), and
the move generators of the board and card games whose messages list no moves."""

import asyncio
import random

import grpc
import pytest

import maro.arena.games.textarena.moves as moves
from maro.agents.bots import bot_names, get_bot
from maro.agents.client import create_match, play_seat
from maro.arena.engine import GAMES, InvalidAction, UnknownGame, game_class, make_game
from maro.arena.errors import GameCrashed
from maro.arena.games.textarena import catalogue, supported
from maro.arena.games.textarena.rules import MAX_LEGAL
from maro.arena.match.messages import Submission
from tests.helpers import random_match as play

ta = pytest.importorskip("textarena")

ARENA_GAMES = ["KuhnPoker-v0", "SimpleNegotiation-v0", "SecretMafia-v0", "IteratedPrisonersDilemma-v0",
               "TicTacToe-v0", "LiarsDice-v0", "IndianPoker-v0", "SimpleBlindAuction-v0", "ThreePlayerIPD-v0",
               "TruthAndDeception-v0"]


def test_ids_are_canonical_and_variable_tables_take_a_seat_count():
    assert game_class("textarena:KuhnPoker-v0-raw").spec.id == "textarena:KuhnPoker-v0"
    assert game_class("textarena:KuhnPoker-v0-train") is game_class("textarena:KuhnPoker-v0")
    mafia = game_class("textarena:SecretMafia-v0")
    assert (mafia.spec.min_players, mafia.spec.max_players) == (6, 10)
    assert {"mafia", "villager", "doctor", "detective"} <= set(mafia.spec.roles)
    assert make_game("textarena:SecretMafia-v0", {"players": 8}).num_players() == 8
    for bad in ({"players": 5}, {"players": 11}, {"seats": 6}):
        with pytest.raises(ValueError):
            make_game("textarena:SecretMafia-v0", bad)
    with pytest.raises(ValueError, match="seats 4, 6, 8, 10"):
        make_game("textarena:Taboo-v0", {"players": 5})
    # Briscola resets at 3-4 players, but its code ends those games with a method only a two-player
    # state has (TextArena 0.7.4): the counts it was not written for are not offered
    assert game_class("textarena:Briscola-v0").spec.max_players == 2
    with pytest.raises(ValueError):
        make_game("textarena:Briscola-v0", {"players": 4})


@pytest.mark.parametrize("game_id, reason", [
    ("textarena:NoSuchGame-v0", "has no environment"),
    ("textarena:", "names an environment"),
    ("textarena:Sudoku-v0", "one-player"),
    ("textarena:Codenames-v0", "NLTK data"),
    ("textarena:Debate-v0", "hosted model"),
    ("textarena:Chess-v0", "does not compile"),
    ("textarena:ScorableGames-v0", "data files"),
    ("textarena:" + "x" * 300, "at most"),
])
def test_unsupported_ids_are_refused_with_the_reason(game_id, reason):
    with pytest.raises(UnknownGame, match=reason):
        GAMES.get(game_id)


def test_the_catalogue_lists_supported_and_refused_environments():
    entries = {e.id: e for e in catalogue()}
    assert len(entries) > 200 and len(list(supported())) >= 100
    assert not entries["textarena:SecretMafia-v0"].refused and entries["textarena:SecretMafia-v0"].players == "6-10"
    assert "NLTK" in entries["textarena:Wordle-v0"].refused
    assert not any(i.endswith("-raw") or i.endswith("-train") for i in entries)


def test_listing_every_environment_calls_out_to_no_network(monkeypatch):
    import socket
    import urllib.request

    from maro.arena.games.textarena import rules

    calls = []

    def refuse(sock, address):
        calls.append(address)
        raise OSError("no network in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, *args, **kwargs: refuse(None, url))
    nltk = pytest.importorskip("nltk")
    monkeypatch.setattr(nltk, "download", lambda *args, **kwargs: refuse(None, f"nltk.download{args}"))
    rules.catalogue.cache_clear()
    rules.probe.cache_clear()
    assert len(rules.catalogue()) > 200
    assert calls == []


def test_a_seat_sees_only_the_messages_textarena_gives_that_player():
    game = make_game("textarena:KuhnPoker-v0")
    state, events = game.init(5)
    cards = [next(m[2] for m in game.view(state, s)["messages"] if "Your card is" in m[2]) for s in range(2)]
    assert cards[0] != cards[1]
    for seat in range(2):
        view = game.view(state, seat)
        assert cards[seat] in str(view) and cards[1 - seat] not in str(view)
        dealt = [e for e in events if "Your card is" in e.text and e.visible_to(seat)]
        assert dealt and all(e.private_to == (seat,) for e in dealt)
    assert [e.private_to for e in events if e.kind == "prompt"] == [(0,), (1,)]
    # a message every seat got is one public event
    seat = min(game.acting(state))
    _, moved = game.step(state, {seat: "[check]"})
    told = [e for e in moved if "submitted move" in e.text]
    assert len(told) == 1 and told[0].private_to == ()


def test_textarena_invalid_moves_are_our_refusals_and_change_nothing():
    game = make_game("textarena:KuhnPoker-v0")
    state, _ = game.init(0)
    seat = min(game.acting(state))
    with pytest.raises(InvalidAction, match=r"Action must be"):
        game.step(state, {seat: "I raise! [Raise]"})
    assert game.view(state, seat)["legal"] == ["[check]", "[bet]"]
    after, _ = game.step(state, {seat: "I will check. [Check]"})
    assert after.actions == ("I will check. [Check]",) and state.actions == ()
    with pytest.raises(InvalidAction, match="empty"):
        game.step(state, {seat: "   "})
    with pytest.raises(InvalidAction, match="at most"):
        game.step(state, {seat: "[check]" * 1000})


def test_matches_replay_from_their_snapshots_and_leave_the_process_generators_alone():
    game = make_game("textarena:SecretMafia-v0")
    random.seed(123)
    before = random.getstate()
    states, events = play(game, 7)
    assert random.getstate() == before
    # a fresh game object (no cache) rebuilds every state from its snapshot alone
    fresh = make_game("textarena:SecretMafia-v0")
    final = fresh.restore(game.snapshot(states[-1]))
    assert final == states[-1] and final.finished
    middle = fresh.restore(game.snapshot(states[len(states) // 2]))
    assert fresh.view(middle, 0) == game.view(states[len(states) // 2], 0)
    again, events_again = play(make_game("textarena:SecretMafia-v0"), 7)
    assert again == states and [e.text for e in events_again] == [e.text for e in events]


def test_rewards_are_clipped_into_the_outcome_bounds():
    game = make_game("textarena:IteratedPrisonersDilemma-v0")
    for seed in range(3):
        final = play(game, seed)[0][-1]
        assert final.finished and all(-1.0 <= z <= 1.0 for z in final.outcome)


class BrokenMafia(ta.Env):
    """Like the reported Secret Mafia crash: the environment's own code fails mid-game."""

    def reset(self, num_players, seed=None):
        self.state = ta.TwoPlayerState(num_players=num_players, seed=seed)
        self.state.reset(game_state={"votes": []}, player_prompt_function=lambda player_id, game_state:
                         f"You are Player {player_id}. Vote with [vote].")

    def step(self, action):
        self.state.add_observation(from_id=self.state.current_player_id, message=action,
                                   observation_type=ta.ObservationType.PLAYER_ACTION)
        self.state.game_state["votes"].append(action)
        if len(self.state.game_state["votes"]) == 3:
            return [][0]  # the last vote is counted against an empty list
        return self.state.step()


@pytest.fixture
def broken_env():
    from textarena.envs.registration import ENV_REGISTRY, register

    register(id="BrokenMafia-v0", entry_point=BrokenMafia)
    yield "textarena:BrokenMafia-v0"
    ENV_REGISTRY.pop("BrokenMafia-v0")


def test_a_crash_inside_an_environment_is_a_clear_error(broken_env):
    game = make_game(broken_env)
    state, _ = game.init(0)
    for _ in range(2):
        state, _ = game.step(state, {min(game.acting(state)): "[vote]"})
    with pytest.raises(GameCrashed, match="BrokenMafia-v0 raised IndexError in step"):
        game.step(state, {min(game.acting(state)): "[vote]"})


async def _remote_play(arena, channel, game_id, seed, seats, bot="textarena-random"):
    match_id, tokens = await create_match(channel, game_id, seed, seats)

    class Random:
        rng = random.Random(seed)
        seen: list = []

        async def act(self, prompt, rejection):
            view = prompt.observation.view
            assert set(view) == {"game", "seat", "role", "players", "messages", "your_turn", "legal", "finished",
                                 "end_reason"}
            assert view["your_turn"]
            return Submission(prompt.turn, get_bot(bot).act(view, prompt.legal_actions, self.rng))

    return match_id, await play_seat(channel, match_id, tokens[0], Random())


@pytest.mark.parametrize("env_id", ARENA_GAMES)
async def test_bots_and_a_remote_seat_play_textarena_games_through_the_arena(arena, env_id):
    game_id = f"textarena:{env_id}"
    assert bot_names(game_id) == ["textarena-random"]
    n = make_game(game_id).num_players()
    seats = [{"kind": "remote", "name": "random"}] + [{"kind": "bot", "bot": "textarena-random"}] * (n - 1)
    async with grpc.aio.insecure_channel(arena.address) as channel:
        match_id, result = await _remote_play(arena, channel, game_id, 3, seats)
    record = arena.store.get_match(match_id)
    assert record.status == "finished" and result.outcome is not None, record.end_reason
    assert record.game_id == game_id and not result.rejections
    assert all(-1 <= z <= 1 for z in record.outcome)


async def test_a_crashing_environment_aborts_its_match_and_nothing_else(arena, broken_env):
    bots = [{"kind": "bot", "bot": "textarena-random"}]
    async with grpc.aio.insecure_channel(arena.address) as channel:
        healthy = asyncio.ensure_future(_remote_play(arena, channel, "textarena:KuhnPoker-v0", 1,
                                                     [{"kind": "remote", "name": "r"}] + bots))
        broken_id, broken = await _remote_play(arena, channel, broken_env, 2, [{"kind": "remote", "name": "r"}] + bots)
        healthy_id, healthy_result = await healthy
        after_id, _ = await _remote_play(arena, channel, "textarena:TicTacToe-v0", 4,
                                         [{"kind": "remote", "name": "r"}] + bots)
    record = arena.store.get_match(broken_id)
    assert record.status == "aborted" and "BrokenMafia-v0 raised IndexError" in record.end_reason
    assert "crashed" in broken.reason
    assert arena.store.get_match(healthy_id).status == "finished" and healthy_result.outcome is not None
    assert arena.store.get_match(after_id).status == "finished"


BOARD_GAMES = ["ConnectFour-v0", "Nim-v0", "Breakthrough-v0-tiny", "Othello-v0-tiny", "Battleship-v0",
               "ColonelBlotto-v0", "Briscola-v0", "Chopsticks-v0", "UltimateTicTacToe-v0", "TwoDollar-v0"]
"""Environments whose messages do not list their moves: the families of `moves.py` spell them."""


@pytest.mark.parametrize("env_id", BOARD_GAMES)
def test_the_random_bot_finishes_games_whose_messages_list_no_moves(env_id):
    game = make_game(f"textarena:{env_id}")
    states, _ = play(game, 0)  # a refused action would raise InvalidAction
    final = states[-1]
    assert final.finished and "limit" not in final.end_reason and all(-1 <= z <= 1 for z in final.outcome)
    for state in states[:-1]:
        (seat,) = game.acting(state)
        legal = game.legal_actions(state, seat)
        assert 0 < len(legal) <= MAX_LEGAL and len(set(legal)) == len(legal)
        assert all(game.legal_actions(state, other) == () for other in range(state.players) if other != seat)
    assert game.legal_actions(final, 0) == ()


def test_legal_actions_are_the_same_on_every_replay_and_a_sample_where_the_board_allows_more():
    first, second = make_game("textarena:Battleship-v0-standard"), make_game("textarena:Battleship-v0-standard")
    state, _ = first.init(5)
    states = [state]
    for _ in range(5):
        (seat,) = first.acting(state)
        state, _ = first.step(state, {seat: first.random_action(state, seat, random.Random(5))})
        states.append(state)
    for state in states:
        (seat,) = first.acting(state)
        assert first.legal_actions(state, seat) == second.legal_actions(second.restore(first.snapshot(state)), seat)
    opening = first.legal_actions(states[0], min(first.acting(states[0])))
    assert len(opening) == MAX_LEGAL  # a 10 x 10 grid: 100 squares to fire on, a spread-out sample offered
    assert len({square[1] for square in opening}) > 3


def test_move_generators_are_bounded_and_quiet_on_states_laid_out_otherwise():
    def board_env(**attrs):
        return type("ConnectFourEnv", (), {"__module__": "textarena.envs.ConnectFour.env", **attrs})()

    rng = random.Random(0)
    assert moves.candidates(board_env(num_cols=7), 0, rng) == [f"[col {c}]" for c in range(7)]
    assert len(moves.candidates(board_env(num_cols=10**6), 0, rng)) == moves.MAX_GENERATED
    assert moves.candidates(board_env(), 0, rng) == []  # no `num_cols`: the messages' actions only
    assert moves.candidates(object(), 0, rng) == []
    assert {"ConnectFour", "Breakthrough", "Othello", "Battleship", "Poker", "ColonelBlotto"} <= set(moves.GENERATORS)
