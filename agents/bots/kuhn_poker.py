"""The kuhn_poker-v1 bot: a Nash equilibrium strategy of Kuhn poker (alpha = 1/3)."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from maro.agents.bots import Bot, register_bot

ALPHA = 1 / 3
"""The equilibrium family's free parameter (Kuhn 1950): the opener bluffs the Jack with alpha
and bets the King with 3 * alpha; at 1/3 the King always bets."""

# Probability of the aggressive answer ([Bet] when nobody has bet, [Call] when facing a bet),
# by (position, betting so far, card). Keys: "open" = first action of the opener, "after_check"
# = responder after a check, "facing_bet" = responder facing a bet, "check_bet" = opener who
# checked and now faces a bet.
AGGRESSION = {
    "open": {"Jack": ALPHA, "Queen": 0.0, "King": 3 * ALPHA},
    "after_check": {"Jack": 1 / 3, "Queen": 0.0, "King": 1.0},
    "facing_bet": {"Jack": 0.0, "Queen": 1 / 3, "King": 1.0},
    "check_bet": {"Jack": 0.0, "Queen": ALPHA + 1 / 3, "King": 1.0},
}


def situation(view: Mapping[str, Any]) -> str:
    moves = [m["action"] for m in view["history"]]
    if not moves:
        return "open"
    if moves == ["check"]:
        return "after_check"
    if moves == ["bet"]:
        return "facing_bet"
    return "check_bet"


def kuhn_policy(view: Mapping[str, Any], legal_actions: Sequence[str], rng: random.Random) -> str:
    """Play the equilibrium mix for the own card and the betting so far: value-bet and call
    with the King, fold the Jack to a bet but bluff it sometimes, and call with the Queen
    often enough that bluffs do not pay."""
    aggressive = rng.random() < AGGRESSION[situation(view)][view["your_card"]]
    if view["to_call"]:
        return "[Call]" if aggressive else "[Fold]"
    return "[Bet]" if aggressive else "[Check]"


register_bot(Bot("kuhn-bot", "kuhn_poker-v1", kuhn_policy))
