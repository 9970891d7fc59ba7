"""werewolf-v1 scenarios: night resolution, private channels, votes, wins, parser and prompts."""

import json
import random

import pytest

from maro.agents.bots import get_bot
from maro.arena.engine import InvalidAction, make_game
from maro.arena.games.werewolf.text import parse_action

SIX = ("werewolf", "seer", "doctor", "villager", "villager", "villager")
SEVEN = ("werewolf", "werewolf", "seer", "doctor", "villager", "villager", "villager")


def setup(roles, phase="night", alive=None, **params):
    """A hand-dealt state: seat i gets roles[i]."""
    game = make_game("werewolf-v1", {"players": len(roles), **params})
    state, _ = game.init(0)
    alive = tuple(alive) if alive else (True,) * len(roles)
    return game, state.model_copy(update={"roles": tuple(roles), "alive": alive, "phase": phase})


def seen_by(events, seat):
    return "\n".join(e.text for e in events if e.visible_to(seat))


def test_doctor_saves_the_night_target_and_nobody_dies():
    game, state = setup(SIX)
    state, events = game.step(state, {0: "[Kill: 3]", 1: "[Inspect: 4]", 2: "[Protect: 3]"})
    assert all(state.alive) and state.nights[-1].target == 3 and state.nights[-1].died is None
    assert "nobody died" in seen_by(events, 5) and state.phase == "day_talk"


def test_unprotected_target_dies_and_its_role_is_revealed_only_if_the_param_says_so():
    game, state = setup(SIX)
    after, events = game.step(state, {0: "[Kill: 3]", 1: "[Inspect: 4]", 2: "[Protect: 2]"})
    assert not after.alive[3] and "(seat 3: villager)" in seen_by(events, 5)
    game, state = setup(SIX, reveal_on_death=False)
    after, events = game.step(state, {0: "[Kill: 3]", 1: "[Inspect: 4]", 2: "[Protect: 2]"})
    assert not after.alive[3] and "(seat 3:" not in seen_by(events, 5)
    assert "3" not in game.view(after, 5)["known_roles"]


def test_seer_learns_the_truth_privately():
    game, state = setup(SIX)
    state, events = game.step(state, {0: "[Kill: 4]", 1: "[Inspect: 0]", 2: "[Protect: 2]"})
    (vision,) = [e for e in events if e.kind == "vision"]
    assert vision.private_to == (1,) and "(seat 0: werewolf)" in vision.text
    seer = game.view(state, 1)
    assert seer["seer_visions"] == [{"night": 1, "seat": 0, "werewolf": True}] and seer["known_roles"]["0"] == "werewolf"
    for other in (2, 3, 5):
        assert "(seat 0: werewolf)" not in seen_by(events, other)
        assert "seer_visions" not in json.dumps(game.view(state, other)) and "0" not in game.view(state, other)["known_roles"]
    # an innocent verdict says "not a werewolf" and does not tell the seer the exact role
    game, state = setup(SIX)
    state, events = game.step(state, {0: "[Kill: 4]", 1: "[Inspect: 2]", 2: "[Protect: 2]"})
    assert "(seat 2: not a werewolf)" in seen_by(events, 1) and "2" not in game.view(state, 1)["known_roles"]


def test_wolves_chat_is_invisible_to_villagers():
    game, state = setup(SEVEN, phase="night_chat")
    assert game.acting(state) == {0}
    state, events = game.step(state, {0: "[Say: Let us attack seat 4 tonight.]"})
    state, more = game.step(state, {1: "[Pass]"})
    events += more
    assert all(e.private_to == (0, 1) for e in events) and state.phase == "night"
    assert game.view(state, 1)["pack_chat"] == [{"night": 1, "seat": 0, "text": "Let us attack seat 4 tonight."}]
    for villager in range(2, 7):
        assert seen_by(events, villager) == ""
        assert "attack seat 4" not in json.dumps(game.view(state, villager))
        assert "(pack chat)" in game.hidden_from(state, villager)
    assert game.view(state, 0)["known_roles"] == {"0": "werewolf", "1": "werewolf"}
    with pytest.raises(InvalidAction, match="seat 1 is a fellow werewolf"):
        game.validate(state, 0, "[Kill: 1]")


def test_voting_out_the_last_wolf_ends_the_match_with_the_village_winning():
    game, state = setup(SIX, phase="day_vote")
    state, events = game.step(state, {0: "[Vote: 3]", 1: "[Vote: 0]", 2: "[Vote: 0]", 3: "[Vote: 0]", 4: "[Vote: none]", 5: "[Vote: 0]"})
    assert state.finished and state.winner == "village"
    assert state.outcome == (-1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    assert [game.value(state, s) for s in range(6)] == list(state.outcome)
    assert "(seat 0: werewolf)" in seen_by(events, 3) and "Roles:" in events[-1].text


def test_wolves_win_at_parity_after_a_night_kill():
    alive = (True, True, False, True, False, False)  # wolf 0, seer 1, villager 3 remain
    game, state = setup(SIX, alive=alive)
    assert game.acting(state) == {0, 1}
    state, _ = game.step(state, {0: "[Kill: 1]", 1: "[Inspect: 3]"})
    assert state.finished and state.winner == "werewolves"
    assert state.outcome == (1.0, -1.0, -1.0, -1.0, -1.0, -1.0)


def test_a_tied_vote_eliminates_nobody_and_a_split_pack_kills_the_lowest_seat():
    game, state = setup(SIX, phase="day_vote")
    state, _ = game.step(state, {0: "[Vote: 3]", 1: "[Vote: 0]", 2: "[Vote: 0]", 3: "[Vote: 4]", 4: "[Vote: 3]", 5: "[Vote: none]"})
    assert all(state.alive) and state.votes[-1].eliminated is None and state.day == 2
    game, state = setup(SEVEN)
    state, _ = game.step(state, {0: "[Kill: 5]", 1: "[Kill: 4]", 2: "[Inspect: 0]", 3: "[Protect: 3]"})
    assert state.nights[-1].target == 4 and not state.alive[4]


def test_an_undecided_last_day_is_a_draw():
    game, state = setup(SIX, phase="day_vote", max_days=1)
    state, _ = game.step(state, {s: "[Vote: none]" for s in range(6)})
    assert state.finished and state.winner is None and state.outcome == (0.0,) * 6


def test_doctor_may_not_protect_the_same_seat_twice_in_a_row_unless_allowed():
    for repeat in (False, True):
        game, state = setup(SIX, doctor_repeat=repeat, day_discussion_rounds=0)
        state, _ = game.step(state, {0: "[Kill: 3]", 1: "[Inspect: 4]", 2: "[Protect: 5]"})
        state, _ = game.step(state, {s: "[Vote: none]" for s in state.living()})
        assert state.phase == "night" and state.day == 2
        if repeat:
            assert game.validate(state, 2, "[Protect: 5]").target == 5
        else:
            with pytest.raises(InvalidAction, match="two nights in a row"):
                game.validate(state, 2, "[Protect: 5]")


@pytest.mark.parametrize("seat, text, reason", [
    (0, "[Kill: 0]", "cannot kill yourself"),
    (0, "[Kill: 9]", "no seat 9"),
    (1, "[Inspect: 1]", "cannot inspect yourself"),
    (1, "[Kill: 3]", "not possible in the night"),
    (2, "[Protect: 3]", "seat 3 is dead"),
])
def test_refusals_say_what_was_wrong(seat, text, reason):
    game, state = setup(SIX, alive=(True, True, True, False, True, True))
    with pytest.raises(InvalidAction, match=reason):
        game.validate(state, seat, text)


@pytest.mark.parametrize("text, reason", [
    ("I think seat 2", "no action found"),
    ("[Vote: two]", "needs a seat number"),
    ("[Say: ]", "needs some text"),
    ("[Pass: now]", "takes no argument"),
    (f"[Say: {'x' * 201}]", "limit is 200"),
])
def test_parser_explains_what_was_wrong(text, reason):
    with pytest.raises(InvalidAction, match=reason):
        parse_action(text)


def test_parser_takes_the_last_command_and_cleans_speech():
    assert parse_action("Hmm [Vote: 1]... no, [vote: seat 4]") == ("vote", 4)
    assert parse_action("[Vote: None]") == ("vote", None)
    assert parse_action('[Say: I am "the seer" (really)]') == ("say", "I am the seer really")


def test_default_actions_are_legal_in_every_phase():
    game = make_game("werewolf-v1", {"players": 7})
    state, _ = game.init(3)
    while not state.finished:
        joint = {s: game.default_action(state, s) for s in sorted(game.acting(state))}
        state, _ = game.step(state, joint)
    assert state.winner in (None, "village", "werewolves")


def test_prompts_carry_private_knowledge_only_for_its_owner():
    game, state = setup(SEVEN, phase="night_chat")
    state, _ = game.step(state, {0: "[Say: Let us attack seat 4 tonight.]"})
    state, _ = game.step(state, {1: "[Pass]"})
    wolf, villager = (game.game_text.render_prompt(game.view(state, s), game.legal_actions(state, s)) for s in (0, 5))
    assert [m["role"] for m in wolf] == ["system", "user", "assistant", "user"]
    assert "attack seat 4 tonight" in wolf[-1]["content"]
    # Every target written out (the pack's own seats are not targets), never a template to copy.
    assert "Legal actions: [Kill: 2]; [Kill: 3]; [Kill: 4]; [Kill: 5]; [Kill: 6]." in wolf[-1]["content"]
    assert "attack seat 4 tonight" not in villager[-1]["content"] and "seat 1 werewolf" not in villager[-1]["content"]


def test_bots_follow_a_seer_who_found_the_wolf():
    game, state = setup(SIX)
    bot, rng = get_bot("werewolf-bot"), random.Random(0)
    state, _ = game.step(state, {0: "[Kill: 3]", 1: "[Inspect: 0]", 2: "[Protect: 1]"})
    while not state.finished and state.day == 1:
        joint = {s: bot.act(game.view(state, s), game.legal_actions(state, s), rng) for s in sorted(game.acting(state))}
        state, _ = game.step(state, joint)
    assert state.winner == "village" and state.votes[-1].eliminated == 0


def test_value_is_team_symmetric_and_rises_for_the_village_as_wolves_fall():
    game, state = setup(SEVEN, phase="day_vote")
    before = game.value(state, 4)
    state, _ = game.step(state, {s: "[Vote: 0]" if s != 0 else "[Vote: 4]" for s in range(7)})
    assert game.value(state, 4) > before and game.value(state, 1) == -game.value(state, 4)
