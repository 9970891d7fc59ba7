"""werewolf-v1: a hidden-role village of 5-9 seats; night kills, a seer, a doctor and day votes.

The package is the game: `rules` (registered on import), `text` (its action format, parser and
prompt), `heuristic` (its value estimate for learning) and `state` (its parameters, records and state)."""

from maro.arena.games.werewolf import heuristic  # noqa: F401  (attaches the value heuristic)
from maro.arena.games.werewolf.rules import Werewolf  # registers the game

__all__ = ["Werewolf"]
