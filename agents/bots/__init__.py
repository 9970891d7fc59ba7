"""Scripted bots: sensible, seeded players that act from observations only; one module per game."""

from __future__ import annotations

import fnmatch
import importlib
import pkgutil
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

BotPolicy = Callable[[Mapping[str, Any], Sequence[str], random.Random], str]


@dataclass(frozen=True)
class Bot:
    name: str
    game_id: str
    """The game it plays, or a pattern of ids (`openspiel:*`) for the bots of a game family."""
    policy: BotPolicy
    accepts: Callable[[str], str] | None = None
    """For a pattern: why a matching id is still refused ("" when the bot plays it)."""
    probabilities: Callable[[Mapping[str, Any], Sequence[str]], list[float]] | None = None
    """Its probability of each legal action, where the bot can state them (exploitability)."""

    def refusal(self, game_id: str) -> str:
        """Why the bot does not play `game_id` ("" when it does)."""
        if not fnmatch.fnmatchcase(game_id, self.game_id):
            return f"bot {self.name!r} plays {self.game_id}, not {game_id}"
        return self.accepts(game_id) if self.accepts else ""

    def plays(self, game_id: str) -> bool:
        return not self.refusal(game_id)

    def act(self, view: Mapping[str, Any], legal_actions: Sequence[str], rng: random.Random) -> str:
        return self.policy(view, legal_actions, rng)


_BOTS: dict[str, Bot] = {}
_loaded = False


def register_bot(bot: Bot) -> Bot:
    if bot.name in _BOTS:
        raise ValueError(f"bot {bot.name!r} registered twice")
    _BOTS[bot.name] = bot
    return bot


def _load() -> None:
    """Import every module of this package; each registers its game's bots."""
    global _loaded
    if not _loaded:
        _loaded = True
        for module in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{module.name}")


def get_bot(name: str) -> Bot:
    _load()
    try:
        return _BOTS[name]
    except KeyError:
        raise KeyError(f"unknown bot {name!r}; known: {', '.join(sorted(_BOTS))}") from None


def bot_names(game_id: str | None = None) -> list[str]:
    _load()
    return sorted(n for n, b in _BOTS.items() if game_id is None or b.plays(game_id))


def default_bot(game_id: str) -> str:
    names = bot_names(game_id)
    if not names:
        raise KeyError(f"no scripted bot for {game_id!r}")
    return names[0]


class ScriptedPlayer:
    """A bot as a remote player (the `Player` of agents.client)."""

    def __init__(self, bot_name: str, seed: int = 0, rng: random.Random | None = None):
        self.bot = get_bot(bot_name)
        self.rng = rng or random.Random(seed)

    async def act(self, prompt, rejection: str | None):
        from maro.arena.match.messages import Submission

        return Submission(prompt.turn, self.bot.act(prompt.observation.view, prompt.legal_actions, self.rng))
