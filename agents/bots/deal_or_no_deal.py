"""The deal_or_no_deal-v1 bot: a conceding aspiration level plus a model of what the other side wants."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from itertools import product
from typing import Any

from maro.agents.bots import Bot, register_bot

OPENING, CLOSING = 0.9, 0.55
"""Aspired share of the own total value at the first and at the last turn."""


def their_interest(view: Mapping[str, Any]) -> dict[str, float]:
    """Guess the other side's value per item type from what its proposals claimed: the mean
    claimed fraction of each type, starting from an even prior of one half."""
    claims = [m["take"] for m in view["history"] if m["kind"] == "propose" and m["role"] != view["role"]]
    items = view["items"]
    return {k: (0.5 + sum(c[k] / items[k] for c in claims)) / (1 + len(claims)) for k in items}


def best_proposal(view: Mapping[str, Any], aspiration: float) -> tuple[dict[str, int], float]:
    """Among splits worth at least `aspiration` to us, the one leaving the other side the most
    by our guess of its values (trading away what we value little); else our best split."""
    items, values, total = view["items"], view["your_values"], view["total_value"]
    interest = their_interest(view)
    best, best_key = None, None
    for take in product(*(range(n + 1) for n in items.values())):
        taken = dict(zip(items, take))
        mine = sum(values[k] * taken[k] for k in items) / total
        theirs = sum(interest[k] * (items[k] - taken[k]) for k in items)
        key = (mine >= aspiration, theirs if mine >= aspiration else mine, mine)
        if best_key is None or key > best_key:
            best, best_key = taken, key
    return best, best_key[2]


def deal_policy(view: Mapping[str, Any], legal_actions: Sequence[str], rng: random.Random) -> str:
    """Concede linearly from a 0.9 share to a 0.55 share by the deadline; accept the standing
    proposal when it is at least what we would ask next, or on the last turn when it beats no
    deal; walk only then, when it does not."""
    progress = min(1.0, view["turn"] / max(1, view["max_turns"] - 1))
    aspiration = OPENING - (OPENING - CLOSING) * progress - rng.uniform(0.0, 0.05)
    take, ask = best_proposal(view, aspiration)
    standing = view["standing_proposal"]
    if standing is not None and standing["role"] != view["role"]:
        values, total = view["your_values"], view["total_value"]
        offered = sum(values[k] * n for k, n in standing["other_gets"].items()) / total
        if offered >= min(ask, aspiration):
            return "[Accept]"
        if view["turns_left"] <= 1:
            return "[Accept]" if offered > view["no_deal_payoff"] else "[Walk]"
    return "[Propose: " + " ".join(f"{k}={n}" for k, n in take.items()) + "]"


register_bot(Bot("deal-bot", "deal_or_no_deal-v1", deal_policy))
