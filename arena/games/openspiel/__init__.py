"""OpenSpiel's games at our table: every id `openspiel:<game string>` the adapter supports
(`maro games --all` lists them, and the refused ones with the reason).

`rules` maps an OpenSpiel game onto the engine, `text` renders its prompts and parses replies.
Importing the package registers the family with the game registry."""

from maro.arena.engine import GAMES
from maro.arena.games.openspiel.rules import FAMILY, OpenSpielGame, catalogue, supported

GAMES.add_family(FAMILY)

__all__ = ["FAMILY", "OpenSpielGame", "catalogue", "supported"]
