"""Every registered game and every supported OpenSpiel game, held to the same contract: random
play, replay, snapshots, bounds, hidden information, refusals, prompts (its scripted bot is held
to it in tests/agents/test_bots.py)."""

import json
import random

import pytest

from maro.arena.engine import Game, GameError, InvalidAction, NotYourTurn, game_class, game_ids, make_game
from tests.helpers import adapted_variants, seeds_for, variants, visible_text

CASES = list(variants()) + list(adapted_variants())


def random_play(game: Game, seed: int, max_steps: int = 2000):
    """Play random legal actions; returns the states, the actions and the events, in order."""
    rng = random.Random(seed)
    state, events = game.init(seed)
    states, actions = [state], []
    for _ in range(max_steps):
        if state.finished:
            return states, actions, events
        joint = {seat: game.random_action(state, seat, rng) for seat in sorted(game.acting(state))}
        state, new = game.step(state, joint)
        states.append(state)
        actions.append(joint)
        events = events + new
    raise AssertionError(f"no end after {max_steps} steps")


@pytest.mark.parametrize("game_id, params", CASES)
def test_random_legal_play_ends_within_bounds_and_replays(game_id, params):
    game = make_game(game_id, params)
    low, high = game.spec.outcome_bounds
    for seed in seeds_for(game_id):
        states, actions, events = random_play(game, seed)
        final = states[-1]
        assert len(final.outcome) == game.num_players()
        assert all(low <= z <= high for z in final.outcome), final.outcome
        # same seed and same actions: same transcript and same states
        state, replay_events = game.init(seed)
        for joint in actions:
            state, new = game.step(state, joint)
            replay_events = replay_events + new
        assert state == final and [e.text for e in replay_events] == [e.text for e in events]
        if game.spec.teams:
            by_team = {}
            for seat in range(game.num_players()):
                by_team.setdefault(game.team(final, seat), set()).add(final.outcome[seat])
            assert all(len(v) == 1 for v in by_team.values()), by_team


@pytest.mark.parametrize("game_id, params", CASES)
def test_snapshots_round_trip_and_values_are_bounded(game_id, params):
    game = make_game(game_id, params)
    for seed in seeds_for(game_id)[:10]:
        states, _, _ = random_play(game, seed)
        for state in states:
            snap = game.snapshot(state)
            assert game.restore(snap) == state and game.snapshot(game.restore(snap)) == snap
            json.loads(snap)
            for seat in range(game.num_players() if game.has_heuristic() else 0):
                assert -1.0 <= game.value(state, seat) <= 1.0


@pytest.mark.parametrize("game_id, params", CASES)
def test_no_seat_sees_another_seats_private_facts(game_id, params):
    game = make_game(game_id, params)
    for seed in seeds_for(game_id):
        rng = random.Random(seed)
        state, events = game.init(seed)
        while True:
            for observer in range(game.num_players()):
                text = visible_text(game, state, events, observer)
                for secret in game.hidden_from(state, observer):
                    assert secret not in text, f"seat {observer} sees {secret!r} (seed {seed})"
            if state.finished:
                break
            joint = {s: game.random_action(state, s, rng) for s in sorted(game.acting(state))}
            state, new = game.step(state, joint)
            events = events + new


@pytest.mark.parametrize("game_id, params", CASES)
def test_invalid_and_out_of_turn_actions_are_refused_with_a_reason(game_id, params):
    game = make_game(game_id, params)
    for seed in seeds_for(game_id)[:10]:
        rng = random.Random(seed)
        states, _, _ = random_play(game, seed)
        for state in states[:-1][:20]:
            acting = sorted(game.acting(state))
            snap = game.snapshot(state)
            joint = {s: game.random_action(state, s, rng) for s in acting}
            bad = dict(joint)
            bad[acting[0]] = "%% gibberish %%"
            free_text = getattr(game, "takes_free_text", None)  # TextArena's chat turns take any text
            if free_text is None or not free_text(state, acting[0]):
                with pytest.raises(InvalidAction) as err:
                    game.step(state, bad)
                assert err.value.reason
            idle = [s for s in range(game.num_players()) if s not in acting]
            if idle:
                with pytest.raises(NotYourTurn):
                    game.step(state, {**joint, idle[0]: joint[acting[0]]})
            assert game.snapshot(state) == snap
        with pytest.raises(GameError):
            game.validate(states[-1], 0, "anything")


@pytest.mark.parametrize("game_id, params", CASES)
def test_forfeit_ends_the_match_against_the_seat_and_its_team(game_id, params):
    game = make_game(game_id, params)
    state, _ = game.init(1)
    final, _ = game.forfeit(state, 0, "test")
    assert final.finished and final.outcome[0] == game.spec.outcome_bounds[0]
    for seat in range(game.num_players()):
        same_team = game.spec.teams and game.team(state, seat) == game.team(state, 0)
        assert final.outcome[seat] == (final.outcome[0] if seat == 0 or same_team else 0.0)


@pytest.mark.parametrize("game_id, params", CASES)
def test_prompts_have_rules_one_worked_example_and_the_current_turn(game_id, params):
    game = make_game(game_id, params)
    rng = random.Random(0)
    state, _ = game.init(3)
    while not state.finished:
        for seat in sorted(game.acting(state)):
            obs = game.observe(state, seat)
            messages = game.game_text.render_prompt(obs.view, obs.legal_actions)
            roles = [m["role"] for m in messages]
            assert roles[0] == "system" and roles[-1] == "user" and "assistant" in roles
            assert all(isinstance(m["content"], str) and m["content"] for m in messages)
            for secret in game.hidden_from(state, seat):
                assert all(secret not in m["content"] for m in messages)
        state, _ = game.step(state, {s: game.random_action(state, s, rng) for s in sorted(game.acting(state))})


def unbounded(schema: dict, defs: dict, where: str = "params") -> list[str]:
    """Places in a JSON schema where a caller could pick any size: numbers without a maximum
    (or minimum), arrays without maxItems, strings without maxLength."""
    if "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    found = []
    for option in schema.get("anyOf", ()):
        found += unbounded(option, defs, where)
    kind = schema.get("type")
    if kind in ("integer", "number"):
        if "maximum" not in schema and "exclusiveMaximum" not in schema:
            found.append(f"{where}: no maximum")
        if "minimum" not in schema and "exclusiveMinimum" not in schema:
            found.append(f"{where}: no minimum")
    elif kind == "string" and "maxLength" not in schema and "enum" not in schema:
        found.append(f"{where}: no maxLength")
    elif kind == "array":
        if "maxItems" not in schema:
            found.append(f"{where}: no maxItems")
        for i, item in enumerate(schema.get("prefixItems", ())):
            found += unbounded(item, defs, f"{where}[{i}]")
        if "items" in schema:
            found += unbounded(schema["items"], defs, f"{where}[]")
    elif kind == "object":
        for name, prop in schema.get("properties", {}).items():
            found += unbounded(prop, defs, f"{where}.{name}")
    return found


@pytest.mark.parametrize("gid", game_ids())
def test_every_parameter_a_caller_picks_has_a_declared_bound(gid):
    schema = game_class(gid).params_model.model_json_schema()
    assert unbounded(schema, schema.get("$defs", {})) == []


@pytest.mark.parametrize("gid", game_ids())
def test_a_game_at_its_largest_parameters_ends_within_the_runner_caps(gid):
    from maro.arena.match.runner import RunnerConfig

    props = game_class(gid).params_model.model_json_schema()["properties"]
    largest = {name: p["maximum"] for name, p in props.items() if p.get("type") == "integer"}
    game = make_game(gid, largest)
    cap = RunnerConfig().max_events
    for seed in range(3):
        states, _, events = random_play(game, seed, max_steps=cap)
        assert len(events) < cap, (gid, largest)
    with pytest.raises(ValueError):
        make_game(gid, {name: value + 1 for name, value in largest.items()} or {"unknown": 1})
