"""A bot for every TextArena environment at our table: it plays, uniformly at random, one of the
bracketed actions of its recent messages that the environment accepts now (the view's `legal`,
tried by the adapter on a copy of the environment), and in chat turns, where none is listed, a
short neutral message."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from maro.agents.bots import Bot, register_bot
from maro.arena.games.textarena.rules import FREE_TEXT


def random_legal(view: Mapping[str, Any], legal_actions: Sequence[str], rng: random.Random) -> str:
    legal = list(view.get("legal") or legal_actions)
    return rng.choice(legal) if legal else FREE_TEXT


def uniform(view: Mapping[str, Any], legal_actions: Sequence[str]) -> list[float]:
    return [1.0 / len(legal_actions)] * len(legal_actions)


register_bot(Bot("textarena-random", "textarena:*", random_legal, probabilities=uniform))
