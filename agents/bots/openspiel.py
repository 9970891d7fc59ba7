"""Bots for every OpenSpiel game at our table: a uniformly random legal player, and for
two-player zero-sum poker (Kuhn, Leduc) a CFR player, the average policy of OpenSpiel's CFR
solver, computed once per game and process (a fraction of a second for Kuhn, a few seconds for
Leduc). Both act from the seat's view alone: its `legal` list and its information state."""

from __future__ import annotations

import functools
import random
from collections.abc import Mapping, Sequence
from typing import Any

from maro.agents.bots import Bot, register_bot

CFR_GAMES = {"kuhn_poker": 1000, "leduc_poker": 300}
"""The games the CFR bot plays, with its solver's iterations (NashConv about 0.002 and 0.07)."""


def random_legal(view: Mapping[str, Any], legal_actions: Sequence[str], rng: random.Random) -> str:
    return f"[{rng.choice(view['legal'])[1]}]"


def uniform(view: Mapping[str, Any], legal_actions: Sequence[str]) -> list[float]:
    return [1.0 / len(legal_actions)] * len(legal_actions)


def cfr_refusal(game_id: str) -> str:
    from maro.arena.engine import game_class
    from maro.arena.errors import UnknownGame

    try:
        game = game_class(game_id).spiel_game
    except (UnknownGame, AttributeError) as exc:
        return f"openspiel-cfr: {exc}"
    if game.get_type().short_name not in CFR_GAMES or game.num_players() != 2:
        return f"openspiel-cfr plays two-player {', '.join(sorted(CFR_GAMES))}, not {game_id}"
    return ""


@functools.cache
def cfr_policy(game_id: str):
    """The CFR solver's average policy for the game (pyspiel's tabular policy)."""
    import pyspiel

    from maro.arena.engine import game_class

    game = game_class(game_id).spiel_game
    solver = pyspiel.CFRSolver(game)
    for _ in range(CFR_GAMES[game.get_type().short_name]):
        solver.evaluate_and_update_policy()
    return solver.tabular_average_policy()


def cfr_probabilities(view: Mapping[str, Any], legal_actions: Sequence[str]) -> list[float]:
    """The CFR policy's probability of each action of the view's `legal` list (in its order)."""
    probs = dict(cfr_policy(view["game"]).get_state_policy(view["information_state"]))
    weights = [max(0.0, probs.get(a, 0.0)) for a, _ in view["legal"]]
    total = sum(weights)
    return [w / total for w in weights] if total > 0 else [1.0 / len(weights)] * len(weights)


def cfr(view: Mapping[str, Any], legal_actions: Sequence[str], rng: random.Random) -> str:
    texts = [t for _, t in view["legal"]]
    return f"[{rng.choices(texts, weights=cfr_probabilities(view, legal_actions))[0]}]"


register_bot(Bot("openspiel-random", "openspiel:*", random_legal, probabilities=uniform))
register_bot(Bot("openspiel-cfr", "openspiel:*", cfr, accepts=cfr_refusal, probabilities=cfr_probabilities))
