"""A weighted mix of estimators (maro.mix_values)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from maro.learner import maro
from maro.learner.estimators.base import Estimator


class MixEstimator(Estimator):
    """V = sum_j w_j V_j / sum_j w_j over the component estimators (maro.mix_values)."""

    def __init__(self, parts: Mapping[str, Estimator], weights: Mapping[str, float]):
        super().__init__()
        self.parts, self.weights = dict(parts), [weights[name] for name in parts]

    def _compute(self, snapshot: str, seat: int) -> float:
        return self._compute_many([(snapshot, seat)])[0]

    def _compute_many(self, queries: list[tuple[str, int]]) -> list[float]:
        columns = [part.values(queries) for part in self.parts.values()]
        return [maro.mix_values([c[i] for c in columns], self.weights) for i in range(len(queries))]

    @property
    def all_stats(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for part in self.parts.values():
            total.update(part.stats)
        return total
