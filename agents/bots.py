"""Scripted bots: sensible, seeded players that act from observations only."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

BotPolicy = Callable[[Mapping[str, Any], Sequence[str], random.Random], str]


@dataclass(frozen=True)
class Bot:
    name: str
    game_id: str
    policy: BotPolicy

    def act(self, view: Mapping[str, Any], legal_actions: Sequence[str], rng: random.Random) -> str:
        return self.policy(view, legal_actions, rng)


def bargaining_policy(view: Mapping[str, Any], legal_actions: Sequence[str], rng: random.Random) -> str:
    """Concede linearly from an ambitious opening toward the own reservation value; accept any
    standing offer at least as good as the next concession would be, walk only at the end
    when the other side is still beyond the reservation value."""
    seller = view["role"] == "seller"
    reserve = view["private"]["cost"] if seller else view["private"]["value"]
    total = 2 * view["max_rounds"]
    progress = min(1.0, view["turn"] / max(1, total - 1))
    margin = max(4.0, 0.6 * reserve) * (1.0 - 0.8 * progress) + rng.uniform(0, 2)
    target = round(reserve + margin) if seller else round(max(0.0, reserve - margin))
    target = min(view["price_max"], max(0, target))
    standing = view["standing_offer"]
    theirs = view["history"][-1] if view["history"] else None
    if theirs is not None and theirs["kind"] == "offer" and standing and standing["role"] != view["role"]:
        price = standing["price"]
        good = price >= target if seller else price <= target
        last_chance = view["turns_left"] <= 1
        acceptable = price > reserve if seller else price < reserve
        if good or (last_chance and acceptable):
            return "[Accept]"
        if last_chance:
            return "[Walk]"
    return f"[Offer: {target}]"


_BOTS = {b.name: b for b in (Bot("bargaining-bot", "bargaining-v1", bargaining_policy),)}


def get_bot(name: str) -> Bot:
    try:
        return _BOTS[name]
    except KeyError:
        raise KeyError(f"unknown bot {name!r}; known: {', '.join(sorted(_BOTS))}") from None


def bot_names(game_id: str | None = None) -> list[str]:
    return sorted(n for n, b in _BOTS.items() if game_id is None or b.game_id == game_id)


def default_bot(game_id: str) -> str:
    names = bot_names(game_id)
    if not names:
        raise KeyError(f"no scripted bot for {game_id!r}")
    return names[0]


class ScriptedPlayer:
    """A bot as a remote player (the `Player` of agents.client)."""

    def __init__(self, bot_name: str, seed: int = 0):
        self.bot = get_bot(bot_name)
        self.rng = random.Random(seed)

    async def act(self, prompt, rejection: str | None):
        from maro.arena.messages import Submission

        return Submission(prompt.turn, self.bot.act(prompt.observation.view, prompt.legal_actions, self.rng))
