"""The bargaining-v1 bot: concede from an ambitious opening toward the own reservation value."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from maro.agents.bots import Bot, register_bot


def bargaining_policy(view: Mapping[str, Any], legal_actions: Sequence[str], rng: random.Random) -> str:
    """Concede linearly from an ambitious opening toward the own reservation value; accept any
    standing offer at least as good as the next concession would be, walk only at the end
    when the other side is still beyond the reservation value."""
    seller = view["role"] == "seller"
    reserve = view["private"]["cost"] if seller else view["private"]["value"]
    total = 2 * view["max_rounds"]
    progress = min(1.0, view["turn"] / max(1, total - 1))
    # The same absolute margin for both sides, so neither role is favoured by the bot itself.
    margin = max(3.0, 40.0 * (1.0 - 0.85 * progress)) + rng.uniform(0, 4)
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


register_bot(Bot("bargaining-bot", "bargaining-v1", bargaining_policy))
