"""The registry of games by id, and the seat-count helper built on it."""

from __future__ import annotations

import importlib
import pkgutil
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from maro.arena.engine.game import Game
from maro.arena.engine.text import GameText
from maro.arena.errors import UnknownGame

MAX_ID_LENGTH = 200
"""The longest game id a caller may ask for (family ids carry their parameters)."""
MAX_MADE = 256
"""Family game classes kept at once; the least recently used is made again when asked for."""


@dataclass(frozen=True)
class CatalogueEntry:
    """One game a family offers: its id, and why it is refused (empty when it is supported)."""

    id: str
    players: str
    description: str
    refused: str = ""


@dataclass(frozen=True)
class GameFamily:
    """Games of an outside library, made on demand: `resolve(id)` builds the game class for an
    id `prefix:...` (or raises UnknownGame with the reason it is refused), `catalogue()` lists
    what the installed library offers, supported or not."""

    prefix: str
    resolve: Callable[[str], type[Game]]
    catalogue: Callable[[], Iterable[CatalogueEntry]]


class GameRegistry:
    """Game classes by id. `GAMES` is the process's registry (the built-in games register on
    first use); tests and embedders build their own and add throwaway games to it. Families
    (`add_family`) answer for every id under their prefix, building each class once."""

    def __init__(self, loader: Callable[[], None] | None = None):
        self._classes: dict[str, type[Game]] = {}
        self._families: dict[str, GameFamily] = {}
        self._made: OrderedDict[str, type[Game]] = OrderedDict()
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

    def add_family(self, family: GameFamily) -> GameFamily:
        if not family.prefix or ":" in family.prefix or family.prefix in self._families:
            raise ValueError(f"game family prefix {family.prefix!r} is empty, has a colon or is taken")
        self._families[family.prefix] = family
        return family

    def ids(self) -> list[str]:
        """The built-in (registered) games; `catalogue()` adds what the families offer."""
        self._load()
        return sorted(self._classes)

    def families(self) -> list[str]:
        self._load()
        return sorted(self._families)

    def catalogue(self, prefix: str | None = None) -> list[CatalogueEntry]:
        """What each family offers (supported and refused, with the reason), by id."""
        self._load()
        found = []
        for name in sorted(self._families):
            if prefix is None or name == prefix:
                found += self._families[name].catalogue()
        return sorted(found, key=lambda e: e.id)

    def get(self, game_id: str) -> type[Game]:
        self._load()
        if game_id in self._classes:
            return self._classes[game_id]
        prefix, colon, _ = game_id.partition(":")
        if colon and prefix in self._families:
            if len(game_id) > MAX_ID_LENGTH:
                raise UnknownGame(f"game id of {len(game_id)} characters; at most {MAX_ID_LENGTH}")
            if game_id not in self._made:
                cls = self._families[prefix].resolve(game_id)
                self._made[game_id] = cls = self._made.get(cls.spec.id, cls)
                self._made[cls.spec.id] = cls
                while len(self._made) > MAX_MADE:
                    self._made.popitem(last=False)
            self._made.move_to_end(game_id)
            return self._made[game_id]
        families = "".join(f", {p}:..." for p in sorted(self._families))
        raise UnknownGame(f"unknown game {game_id!r}; known: {', '.join(sorted(self._classes))}{families}")

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
