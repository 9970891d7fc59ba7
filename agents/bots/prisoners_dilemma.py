"""The prisoners_dilemma-v1 bot: tit-for-tat against the majority, with honest chat about it."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from maro.agents.bots import Bot, register_bot


def _others_last_round(view: Mapping[str, Any]) -> list[str]:
    if not view["history"]:
        return []
    moves = view["history"][-1]["moves"]
    return [m for s, m in enumerate(moves) if s != view["seat"]]


def _intends_to_cooperate(view: Mapping[str, Any]) -> bool:
    """Cooperate first, then mirror the majority of the other seats' last moves (ties forgive)."""
    last = _others_last_round(view)
    defectors = sum(m == "defect" for m in last)
    return defectors * 2 <= len(last)


def _speech(view: Mapping[str, Any], rng: random.Random) -> str:
    last = _others_last_round(view)
    if not last:
        return rng.choice(("Hello all. I will cooperate, and I will keep cooperating as long as most of you do.",
                           "Let us all cooperate: 3 points each beats 1 point each every round."))
    moves = view["history"][-1]["moves"]
    defectors = [s for s, m in enumerate(moves) if m == "defect" and s != view["seat"]]
    if not defectors:
        return rng.choice(("Everyone cooperated last round. Let us keep it that way.",
                           "Good round. I am cooperating again."))
    names = ", ".join(f"seat {s}" for s in defectors)
    if _intends_to_cooperate(view):
        return f"{names} defected last round. Most of you cooperated, so I stay cooperative, but do not push it."
    return f"{names} defected last round. I will defect until the majority cooperates again."


def prisoners_dilemma_policy(view: Mapping[str, Any], legal_actions: Sequence[str], rng: random.Random) -> str:
    """Say what it will do in the chat (passing on later chat passes of a round), then do it."""
    if view["phase"] == "chat":
        spoke = any(c["round"] == view["round"] and c["seat"] == view["seat"] for c in view["chat"])
        return "[Pass]" if spoke else f"[Say: {_speech(view, rng)}]"
    return "[Cooperate]" if _intends_to_cooperate(view) else "[Defect]"


register_bot(Bot("prisoners_dilemma-bot", "prisoners_dilemma-v1", prisoners_dilemma_policy))
