"""The pure game engine: what a game declares (`spec`), the rules' base class and step flow
(`game`), the registry (`registry`) and the text helpers every game's prompts share (`text`).
Everything a game's rules need is importable from here."""

from maro.arena.engine.game import Event, Game, Heuristic, Observation, Params, State, heuristic_of, view_entry
from maro.arena.engine.registry import (
                                        GAMES,
                                        CatalogueEntry,
                                        GameFamily,
                                        GameRegistry,
                                        game_class,
                                        game_ids,
                                        make_game,
                                        register,
                                        seating,
                                        text_for,
)
from maro.arena.engine.spec import Fallback, GameSpec
from maro.arena.engine.text import GameText
from maro.arena.errors import GameError, InvalidAction, MatchOver, NotYourTurn, UnknownGame

__all__ = ["GAMES", "CatalogueEntry", "Event", "Fallback", "Game", "GameError", "GameFamily", "GameRegistry", "GameSpec",
           "GameText", "Heuristic", "InvalidAction", "MatchOver", "NotYourTurn", "Observation", "Params", "State", "UnknownGame", "game_class",
           "game_ids", "heuristic_of", "make_game", "register", "seating", "text_for", "view_entry"]
