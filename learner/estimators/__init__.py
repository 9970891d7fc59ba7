"""Value estimators V_i(s) in [-1, 1] from a snapshot, one module each: the game's heuristic
(`base.GameEstimator`), rollouts, an LLM judge, and a mix of those. `ESTIMATORS` names the
builders; a new estimator is its module, a name in `config.EstimatorName`, a line here, and its
settings on `MaroConfig`."""

from __future__ import annotations

from collections.abc import Callable

from maro.agents.llm import CompleteFn
from maro.arena.engine import Game
from maro.learner.config import MaroConfig
from maro.learner.estimators.base import Estimator, GameEstimator, Policy
from maro.learner.estimators.judge import JudgeEstimator, judge_messages, parse_probability
from maro.learner.estimators.mix import MixEstimator
from maro.learner.estimators.rollout import RolloutEstimator, bot_policy, make_pool, random_policy

__all__ = ["ESTIMATORS", "Estimator", "EstimatorFactory", "GameEstimator", "JudgeEstimator", "MixEstimator", "Policy",
           "RolloutEstimator", "bot_policy", "estimator_stats", "judge_messages", "make_estimator", "make_pool",
           "parse_probability", "random_policy"]

Builder = Callable[[MaroConfig, Game, "Policy | None", "CompleteFn | None"], Estimator]

ESTIMATORS: dict[str, Builder] = {
    "game": lambda config, game, policy, complete: (
        GameEstimator(game) if game.has_heuristic() else RolloutEstimator(game, config.rollout, policy)),
    "rollout": lambda config, game, policy, complete: RolloutEstimator(game, config.rollout, policy),
    "judge": lambda config, game, policy, complete: JudgeEstimator(game, config.judge, complete),
}
"""The single estimators by name (`mix` combines them by `MaroConfig.mix`). `game` is the game's
heuristic, and rollouts for a game without one (OpenSpiel's and TextArena's)."""

EstimatorFactory = Callable[[Game], Estimator]


def make_estimator(config: MaroConfig, game: Game, *, model_policy: Policy | None = None,
                   complete: CompleteFn | None = None) -> Estimator:
    """The estimator `config.estimator` names, for one game (and its params)."""

    def one(name: str) -> Estimator:
        if name not in ESTIMATORS:
            raise ValueError(f"unknown estimator {name!r}; known: {', '.join(ESTIMATORS)}, mix")
        return ESTIMATORS[name](config, game, model_policy, complete)

    if config.estimator == "mix":
        weights = {name: w for name, w in config.mix.weights.items() if w > 0}
        return MixEstimator({name: one(name) for name in weights}, weights)
    return one(config.estimator)


def estimator_stats(estimator: Estimator) -> dict[str, float]:
    """The estimator's counters (a mix: its parts'), under `estimator/...` names."""
    stats = estimator.all_stats if isinstance(estimator, MixEstimator) else estimator.stats
    return {f"estimator/{k}": float(v) for k, v in stats.items()}
