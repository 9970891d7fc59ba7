"""TextArena's environments at our table: every id `textarena:<environment id>` the adapter
supports (`maro games --all` lists them, and the refused ones with the reason).

`envs` finds and starts an environment offline, `rules` maps it onto the engine, `moves` offers
legal-action hints, `text` renders its prompts. Importing the package registers the family
with the game registry."""

from maro.arena.engine import GAMES
from maro.arena.games.textarena.rules import FAMILY, TextArenaGame, catalogue, supported

GAMES.add_family(FAMILY)

__all__ = ["FAMILY", "TextArenaGame", "catalogue", "supported"]
