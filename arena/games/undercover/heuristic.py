"""undercover-v1's value heuristic: a cheap guess of a seat's expected outcome in an unfinished state,
for MARO's `game` estimator (the engine's `Game.value` gives the outcome once the match is over)."""

from __future__ import annotations

from maro.arena.engine import heuristic_of
from maro.arena.games.undercover.rules import CIVILIAN, Undercover, UndercoverState


@heuristic_of(Undercover)
def value(game: Undercover, state: UndercoverState, seat: int) -> float:
    """Civilians' progress (share of undercovers out) minus the undercovers' (the larger of
    the share of needed civilian eliminations done and the share of rounds played), with
    the sign of the seat's team; equals the outcome at the end."""
    u, n = game.params.num_undercovers, game.params.players
    under = sum(s in state.undercover_seats for s in state.alive)
    civilians_out = (n - u) - (len(state.alive) - under)
    civ = (u - under) / u
    und = max(civilians_out / max(1, n - u - under), state.round / game.params.max_rounds)
    score = max(-1.0, min(1.0, civ - und))
    return score if game.role(state, seat) == CIVILIAN else -score
