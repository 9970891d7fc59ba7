"""kuhn_poker-v1: three-card poker with one betting round per hand (as in OpenSpiel and SPIRAL).

The package is the game: `rules` (registered on import), `text` (its action format, parser and
prompt), `heuristic` (its value estimate for learning)."""

from maro.arena.games.kuhn_poker import heuristic  # noqa: F401  (attaches the value heuristic)
from maro.arena.games.kuhn_poker.rules import KuhnPoker  # registers the game

__all__ = ["KuhnPoker"]
