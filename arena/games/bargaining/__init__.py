"""bargaining-v1: a seller and a buyer with private valuations trade alternating offers.

The package is the game: `rules` (registered on import), `text` (its action format, parser and
prompt), `heuristic` (its value estimate for learning)."""

from maro.arena.games.bargaining import heuristic  # noqa: F401  (attaches the value heuristic)
from maro.arena.games.bargaining.rules import Bargaining  # registers the game

__all__ = ["Bargaining"]
