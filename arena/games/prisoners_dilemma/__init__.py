"""prisoners_dilemma-v1: a repeated N-player prisoner's dilemma with free chat and sealed, simultaneous moves.

The package is the game: `rules` (registered on import), `text` (its action format, parser and
prompt), `heuristic` (its value estimate for learning)."""

from maro.arena.games.prisoners_dilemma import heuristic  # noqa: F401  (attaches the value heuristic)
from maro.arena.games.prisoners_dilemma.rules import PrisonersDilemma  # registers the game

__all__ = ["PrisonersDilemma"]
