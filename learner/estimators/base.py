"""The estimator contract: `value(snapshot, seat)` in [-1, 1], cached; the game's own heuristic."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Sequence

from maro.arena.engine import Game, State

Policy = Callable[[Game, State, int, random.Random], str]
"""A rollout policy: (game, state, acting seat, rng) -> action text. Built-ins read only the seat's
observation; the rng is the rollout's own, so seeded policies make rollouts reproducible."""

def _clip(v: float) -> float:
    return max(-1.0, min(1.0, float(v)))


class Estimator(ABC):
    """`value(snapshot, seat)` in [-1, 1], cached by (snapshot, seat); `values` evaluates many at once."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int], float] = {}
        self.stats: Counter[str] = Counter()

    def value(self, snapshot: str, seat: int) -> float:
        return self.values([(snapshot, seat)])[0]

    def values(self, queries: Sequence[tuple[str, int]]) -> list[float]:
        missing = list(dict.fromkeys(q for q in queries if q not in self._cache))
        if missing:
            for q, v in zip(missing, self._compute_many(missing), strict=True):
                self._cache[q] = _clip(v)
        return [self._cache[q] for q in queries]

    def _compute_many(self, queries: list[tuple[str, int]]) -> list[float]:
        return [self._compute(snapshot, seat) for snapshot, seat in queries]

    @abstractmethod
    def _compute(self, snapshot: str, seat: int) -> float: ...


class GameEstimator(Estimator):
    """V_i(s) from the game's own heuristic on a restored snapshot (cheap, deterministic)."""

    def __init__(self, game: Game):
        if not game.has_heuristic():
            raise ValueError(f"{game.spec.id} has no value heuristic for the `game` estimator; use `rollout` or `judge`")
        super().__init__()
        self.game = game

    def _compute(self, snapshot: str, seat: int) -> float:
        return float(self.game.value(self.game.restore(snapshot), seat))
