"""The engine: the game registry as an instance, a spec that checks itself, the base class's
shared flow."""

import pytest

from maro.arena.engine import GAMES, Game, GameRegistry, GameSpec, UnknownGame, game_ids


def test_a_registry_of_its_own_holds_only_what_was_added():
    registry = GameRegistry()
    kuhn = GAMES.get("kuhn_poker-v1")
    assert registry.ids() == [] and registry.add(kuhn) is kuhn and registry.ids() == ["kuhn_poker-v1"]
    assert registry.make("kuhn_poker-v1").num_players() == 2
    with pytest.raises(ValueError, match="registered twice"):
        registry.add(kuhn)
    with pytest.raises(UnknownGame, match="known: kuhn_poker-v1"):
        registry.get("bargaining-v1")
    assert "bargaining-v1" in game_ids() and "kuhn_poker-v1" in GAMES.ids()


def test_a_default_fallback_needs_a_default_action():
    prisoners = GAMES.get("prisoners_dilemma-v1")  # declares the default fallback and writes default_action
    assert prisoners.spec.fallback == "default"

    class Careless(prisoners):
        spec = GameSpec(id="careless-v1", description="", roles=("player",), min_players=2, max_players=2,
                        action_format="[x]", fallback="default")
        default_action = Game.default_action  # the base class's, which returns None

    with pytest.raises(ValueError, match="no default_action"):
        GameRegistry().add(Careless)


@pytest.mark.parametrize("fields, problem", [
    ({"roles": ()}, "at least one role"),
    ({"min_players": 3, "max_players": 2}, "min_players <= max_players"),
    ({"min_players": 0}, "min_players <= max_players"),
    ({"outcome_bounds": (1.0, -1.0)}, "low < high"),
    ({"win_threshold": 5.0}, "win threshold"),
    ({"id": "has space"}, "id without spaces"),
])
def test_a_spec_refuses_what_no_game_could_be(fields, problem):
    base = dict(id="g-v1", description="", roles=("a",), min_players=2, max_players=2, action_format="[x]")
    with pytest.raises(ValueError, match=problem):
        GameSpec(**{**base, **fields})


def test_the_base_class_owns_the_terminal_checks_and_the_seat_count():
    kuhn = GAMES.make("kuhn_poker-v1")
    state, _ = kuhn.init(5)
    assert kuhn.num_players() == 2 and kuhn.acting(state) == {0}
    over = kuhn.finish(state, (1.0, -1.0), "test")
    assert kuhn.acting(over) == frozenset() and kuhn.value(over, 0) == 1.0 and kuhn.value(over, 1) == -1.0
    assert GAMES.make("undercover-v1", {"players": 6}).num_players() == 6


def test_the_value_heuristic_is_optional():
    from maro.learner.config import RolloutConfig
    from maro.learner.estimators import GameEstimator, RolloutEstimator

    kuhn = GAMES.get("kuhn_poker-v1")

    class NoHeuristic(kuhn):
        spec = GameSpec(id="kuhn-plain-v1", description="", roles=kuhn.spec.roles, min_players=2, max_players=2,
                        action_format=kuhn.spec.action_format)
        heuristic = None

    game = GameRegistry().add(NoHeuristic)()
    state, _ = game.init(1)
    assert kuhn.has_heuristic() and not NoHeuristic.has_heuristic()
    with pytest.raises(NotImplementedError, match="rollout"):
        game.value(state, 0)
    assert game.value(game.finish(state, (1.0, -1.0), "x"), 0) == 1.0  # the outcome needs no heuristic
    with pytest.raises(ValueError, match="no value heuristic"):
        GameEstimator(game)
    rollout = RolloutEstimator(game, RolloutConfig(samples=2, pool=["random"], max_steps=1))
    assert -1.0 <= rollout.value(game.snapshot(state), 0) <= 1.0
