"""prisoners_dilemma-v1's value heuristic: a cheap guess of a seat's expected outcome in an unfinished state,
for MARO's `game` estimator (the engine's `Game.value` gives the outcome once the match is over)."""

from __future__ import annotations

from maro.arena.engine import heuristic_of
from maro.arena.games.prisoners_dilemma.rules import (
    RANDOM_ROUND,
    PrisonersDilemma,
    PrisonersDilemmaState,
    round_payoffs,
    to_outcome,
)


@heuristic_of(PrisonersDilemma)
def value(game: PrisonersDilemma, state: PrisonersDilemmaState, seat: int) -> float:
    """Payoffs earned so far plus the remaining rounds projected at the seat's payoff of the
    last round (everyone repeats; before any round, the random-play mean 2.25), mapped like
    the outcome; equals the outcome at the end."""
    earned = game.totals(state)[seat]
    per_round = round_payoffs(state.moves[-1])[seat] if state.moves else RANDOM_ROUND
    left = game.params.rounds - len(state.moves)
    return max(-1.0, min(1.0, to_outcome((earned + left * per_round) / game.params.rounds)))
