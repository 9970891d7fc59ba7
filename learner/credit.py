"""From logged matches to per-behavior advantages and weights, for every MARO variant."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from maro.arena.engine import make_game
from maro.arena.store.records import BehaviorRecord, MatchRecord
from maro.learner import maro
from maro.learner.adapters import ModelRef
from maro.learner.config import MaroConfig
from maro.learner.estimators import Estimator, EstimatorFactory, GameEstimator, estimator_stats, make_estimator
from maro.learner.variants import recipe

__all__ = ["CreditState", "Credited", "GameEstimator", "MaroConfig", "adapter_version", "credit", "learnable"]


@dataclass(frozen=True)
class Credited:
    """One behavior with its MARO reward, advantage and weight (the staleness factor included)."""

    behavior: BehaviorRecord
    reward: float
    advantage: float
    weight: float
    lag: int | None = None  # versions behind the adapter trained from; None: unversioned model


@dataclass
class CreditState:
    """What persists between updates (the `rae` baselines)."""

    baselines: dict[str, float] = field(default_factory=dict)


def adapter_version(model: str) -> int | None:
    """The adapter version a served model name carries: `smollm2@v0002` -> 2, `smollm2@base` -> 0;
    None for a name without one (`smollm2`, a hosted model, a bot's empty name)."""
    return ModelRef.parse(model).number


def version_lag(model: str, current: str | None) -> int | None:
    """Versions `model` lags behind `current` (an adapter name like `v0005`; None = the base model)."""
    return ModelRef.parse(model).lag(current)


def learnable(b: BehaviorRecord) -> bool:
    """Model-driven behaviors only: bots and fallbacks sent no prompt."""
    return bool(b.messages) and bool(b.completion) and not b.fallback


def game_key(match: MatchRecord) -> str:
    """Matches of one game with equal params share an estimator (and its cache)."""
    return f"{match.game_id}:{json.dumps(match.params, sort_keys=True, default=str)}"


@dataclass(frozen=True)
class CreditResult:
    """What `credit` gives: the credited behaviors, its counters (`maro/stale_*`, `estimator/*`)
    and the state after these matches (a new one: the state passed in is left as it was)."""

    credited: list[Credited]
    stats: dict[str, float]
    state: CreditState


def credit(matches: Sequence[MatchRecord], behaviors: Sequence[BehaviorRecord], config: MaroConfig,
           state: CreditState | None = None, current_version: str | None = None, *,
           estimator_factory: EstimatorFactory | None = None) -> CreditResult:
    """Rewards per behavior by variant, then staleness, then role handling; learnable behaviors only.

    `state`: the `rae` baselines before these matches. `current_version`: the adapter the update
    trains from (None: the base model), for the staleness rule. `estimator_factory(game)` replaces
    `make_estimator(config, game)`.
    """
    state = CreditState(dict(state.baselines)) if state is not None else CreditState()
    stats: dict[str, float] = {}
    factory = estimator_factory or (lambda game: make_estimator(config, game))
    by_id = {m.match_id: m for m in matches if m.status == "finished" and m.outcome is not None}
    estimators: dict[str, Estimator] = {}
    per_seat: dict[tuple[str, int], list[BehaviorRecord]] = defaultdict(list)
    rejected: list[BehaviorRecord] = []
    for b in behaviors:
        if b.match_id not in by_id or not learnable(b):
            continue
        if b.accepted:
            per_seat[(b.match_id, b.seat)].append(b)
        elif config.include_rejected:
            rejected.append(b)
    for match_id, _ in per_seat:
        key = game_key(by_id[match_id])
        if key not in estimators:
            estimators[key] = factory(make_game(by_id[match_id].game_id, by_id[match_id].params))
    if recipe(config.variant).needs_values:
        _prefetch(per_seat, by_id, estimators)
    items: list[tuple[BehaviorRecord, float]] = []
    for (match_id, seat), seq in per_seat.items():
        match = by_id[match_id]
        seq.sort(key=lambda b: b.index)
        rewards = _seat_rewards(seq, match.outcome[seat], f"{match.game_id}:{seq[0].role}",
                                estimators[game_key(match)], config, state)
        items += zip(seq, rewards)
    items += [(b, config.invalid_reward) for b in rejected]
    kept, factors, lags = _apply_staleness(items, config, current_version, stats)
    for est in estimators.values():
        for k, v in estimator_stats(est).items():
            stats[k] = stats.get(k, 0.0) + v
    if not kept:
        return CreditResult([], stats, state)
    records, rewards = [b for b, _ in kept], [r for _, r in kept]
    roles = [(by_id[b.match_id].game_id, b.role) for b in records]
    advantages, weights = _advantages_and_weights(rewards, roles, config)
    credited = [Credited(b, r, a, w * f, lag)
                for b, r, a, w, f, lag in zip(records, rewards, advantages, weights, factors, lags)]
    return CreditResult(credited, stats, state)


def _advantages_and_weights(rewards: list[float], roles: list[tuple[str, str]],
                            config: MaroConfig) -> tuple[list[float], list[float]]:
    """The variant's normalisation of the rewards and its role weights (all 1 when off)."""
    how = recipe(config.variant)
    if how.normalise == "role":
        advantages = maro.group_normalise(rewards, roles)
    elif how.normalise == "batch":
        advantages = maro.group_normalise(rewards, [0] * len(rewards))
    else:
        advantages = list(rewards)
    weights = maro.role_weights(roles, config.beta) if how.role_weights else [1.0] * len(rewards)
    return advantages, weights


def _prefetch(per_seat, by_id, estimators) -> None:
    """Evaluate every snapshot the credit needs in one batch per estimator (judge calls run
    concurrently); later `value` calls hit the cache."""
    queries: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for (match_id, seat), seq in per_seat.items():
        q = queries[game_key(by_id[match_id])]
        q += [(b.snapshot_before, seat) for b in seq] + [(b.snapshot_after, seat) for b in seq]
    for key, q in queries.items():
        estimators[key].values(q)


def _apply_staleness(items: list[tuple[BehaviorRecord, float]], config: MaroConfig, current: str | None,
                     stats: dict[str, float]):
    """Drop or down-weight behaviors of too-old adapters (maro.staleness_factor), counting both."""
    kept, factors, lags = [], [], []
    dropped = reweighted = unversioned = 0
    for b, r in items:
        lag = version_lag(b.model, current)
        unversioned += lag is None
        factor = maro.staleness_factor(lag, config.max_staleness, config.stale_rule, config.stale_decay)
        if factor is None:
            dropped += 1
            continue
        reweighted += factor < 1.0
        kept.append((b, r))
        factors.append(factor)
        lags.append(lag)
    known = [lag for lag in lags if lag is not None]
    stats.update({
        "maro/stale_dropped": float(dropped), "maro/stale_reweighted": float(reweighted),
        "maro/unversioned_behaviors": float(unversioned),
        "maro/lag_mean": sum(known) / len(known) if known else 0.0,
    })
    return kept, factors, lags


def _seat_rewards(seq: list[BehaviorRecord], z: float, role_key: str, est: Estimator,
                  config: MaroConfig, state: CreditState) -> list[float]:
    """Per-behavior rewards of one seat's accepted behaviors, in order."""
    how = recipe(config.variant)
    if how.reward == "outcome":
        return [z] * len(seq)
    if how.reward == "rae":
        (advantage,), state.baselines = maro.ema_baselines(state.baselines, [z], [role_key], config.rae_decay)
        return [advantage] * len(seq)
    before = [est.value(b.snapshot_before, b.seat) for b in seq]
    after = [est.value(b.snapshot_after, b.seat) for b in seq]
    utilities = [maro.direct_utility(v0, v1) for v0, v1 in zip(before, after)]
    credits = maro.td_decompose(before, z, config.lambda_) if how.decompose else [z] * len(seq)
    alpha = config.alpha if how.utility else 0.0
    return [maro.mix_reward(c, u, alpha) for c, u in zip(credits, utilities)]
