"""undercover-v1: "Who is the undercover": describe a secret word, find the seats whose word differs, vote them out.

The package is the game: `rules` (registered on import), `text` (its action format, parser and
prompt), `heuristic` (its value estimate for learning)."""

from maro.arena.games.undercover import heuristic  # noqa: F401  (attaches the value heuristic)
from maro.arena.games.undercover.rules import Undercover  # registers the game

__all__ = ["Undercover"]
