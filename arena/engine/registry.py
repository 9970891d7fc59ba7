"""The registry of games by id, and the seat-count helper built on it."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from typing import Any

from maro.arena.engine.game import Game
from maro.arena.engine.text import GameText
from maro.arena.errors import UnknownGame


class GameRegistry:
    """Game classes by id. `GAMES` is the process's registry (the built-in games register on
    first use); tests and embedders build their own and add throwaway games to it."""

    def __init__(self, loader: Callable[[], None] | None = None):
        self._classes: dict[str, type[Game]] = {}
        self._loader = loader

    def _load(self) -> None:
        if self._loader is not None:
            loader, self._loader = self._loader, None  # games register while it runs
            try:
                loader()
            except BaseException:
                self._loader = loader  # a broken game module: retried, and failing, on the next use
                raise

    def add(self, cls: type[Game]) -> type[Game]:
        """Register `cls` under its spec id; a `default` fallback needs a `default_action`."""
        spec = cls.spec
        if spec.id in self._classes:
            raise ValueError(f"game {spec.id!r} registered twice")
        if not isinstance(getattr(cls, "game_text", None), GameText):
            raise ValueError(f"game {spec.id!r} has no game_text (its text module's TEXT)")
        if spec.fallback == "default" and cls.default_action is Game.default_action:
            raise ValueError(f"game {spec.id!r} declares the default fallback but no default_action")
        self._classes[spec.id] = cls
        return cls

    def ids(self) -> list[str]:
        self._load()
        return sorted(self._classes)

    def get(self, game_id: str) -> type[Game]:
        self._load()
        try:
            return self._classes[game_id]
        except KeyError:
            raise UnknownGame(f"unknown game {game_id!r}; known: {', '.join(sorted(self._classes))}") from None

    def make(self, game_id: str, params: Mapping[str, Any] | None = None) -> Game:
        return self.get(game_id)(params)


def _load_builtin() -> None:
    """Import every game package of maro.arena.games; games register themselves on import."""
    import maro.arena.games as package

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")


GAMES = GameRegistry(_load_builtin)


def register(cls: type[Game]) -> type[Game]:
    """Class decorator: add a game to the process's registry."""
    return GAMES.add(cls)


def game_ids() -> list[str]:
    return GAMES.ids()


def make_game(game_id: str, params: Mapping[str, Any] | None = None) -> Game:
    return GAMES.make(game_id, params)


def game_class(game_id: str) -> type[Game]:
    return GAMES.get(game_id)


def text_for(game_id: str) -> GameText:
    """The registered game's text side: `text_for(g).check(view, text)`, `.render_prompt(view, legal)`."""
    return GAMES.get(game_id).game_text


def seating(game_id: str, params: Mapping[str, Any] | None = None,
            players: int | None = None) -> tuple[dict[str, Any], int]:
    """The parameters of a table of `players` seats and the seat count they give: games with a
    variable size take it as their `players_param`, others must have that count; without
    `players`, the count the parameters (or the defaults) give. ValueError says what is wrong."""
    cls = game_class(game_id)
    params = dict(params or {})
    spec = cls.spec
    if players is not None:
        if not spec.min_players <= players <= spec.max_players:
            raise ValueError(f"{game_id} plays with {spec.min_players}-{spec.max_players} seats, not {players}")
        if cls.players_param is not None:
            key = cls.players_param
            if params.setdefault(key, players) != players:
                raise ValueError(f"{players} players, but the parameters say {key}={params[key]!r}")
    count = make_game(game_id, params).num_players()
    if players is not None and count != players:
        raise ValueError(f"{game_id} with these parameters has {count} seats, not {players}")
    return params, count
