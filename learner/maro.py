"""MARO's three mechanisms as small pure functions over plain numbers (see shared MARO.md)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from enum import StrEnum


class Variant(StrEnum):
    """Reward and role handling per behavior; all computed from the same behavior records."""

    OUTCOME = "outcome"
    RAE = "rae"
    MARO = "maro"
    MARO_NO_DECOMPOSE = "maro-no-decompose"
    MARO_NO_UTILITY = "maro-no-utility"
    MARO_NO_ROLES = "maro-no-roles"


def td_decompose(values: Sequence[float], outcome: float, lambda_: float = 0.0) -> list[float]:
    """Split a seat's final outcome over its n decision points (mechanism 1).

    values: [n], values[k] = V_i(s_k) just before the seat's k-th behavior; outcome: z_i.
    TD errors d_k = V(s_{k+1}) - V(s_k) for k < n-1 and d_{n-1} = z - V(s_{n-1}), so
    sum_k d_k = z - V(s_0). With lambda_ > 0 the credit is GAE-blended:
    c_k = sum_{l>=0} lambda_^l d_{k+l}; lambda_ = 1 gives c_k = z - V(s_k).
    Returns [n] credits; [] for no behaviors.
    """
    n = len(values)
    deltas = [(values[k + 1] if k + 1 < n else outcome) - values[k] for k in range(n)]
    credits, running = [0.0] * n, 0.0
    for k in reversed(range(n)):
        running = deltas[k] + lambda_ * running
        credits[k] = running
    return credits


def direct_utility(value_before: float, value_after: float) -> float:
    """u_k = V_i(s'_k) - V_i(s_k): the value change the behavior's own action causes (mechanism 3)."""
    return value_after - value_before


def mix_reward(credit: float, utility: float, alpha: float) -> float:
    """r_k = (1 - alpha) * credit + alpha * utility."""
    return (1.0 - alpha) * credit + alpha * utility


def group_normalise(rewards: Sequence[float], groups: Sequence[Hashable], eps: float = 1e-6) -> list[float]:
    """A_b = (r_b - mean_g) / (std_g + eps) within each group g (mechanism 2, role-conditioned).

    Population std. A group whose rewards are all equal (one behavior included) gets A = 0:
    it carries no information about which behavior was better.
    """
    members: dict[Hashable, list[float]] = defaultdict(list)
    for r, g in zip(rewards, groups, strict=True):
        members[g].append(r)
    stats = {}
    for g, rs in members.items():
        mean = sum(rs) / len(rs)
        stats[g] = (mean, math.sqrt(sum((r - mean) ** 2 for r in rs) / len(rs)))
    return [(r - stats[g][0]) / (stats[g][1] + eps) if stats[g][1] > eps else 0.0
            for r, g in zip(rewards, groups)]


def role_weights(roles: Sequence[Hashable], beta: float) -> list[float]:
    """w_rho = (N / (R * N_rho)) ** beta per behavior, rescaled to mean 1 over the batch.

    N behaviors, R distinct roles, N_rho behaviors of role rho. beta = 1 gives every role the
    same total weight, beta = 0 gives w = 1. Returns [N]; [] for an empty batch.
    """
    n = len(roles)
    if n == 0:
        return []
    counts: dict[Hashable, int] = defaultdict(int)
    for r in roles:
        counts[r] += 1
    raw = [(n / (len(counts) * counts[r])) ** beta for r in roles]
    scale = n / sum(raw)
    return [w * scale for w in raw]


def ema_baselines(baselines: Mapping[str, float], outcomes: Sequence[float], roles: Sequence[str],
                  decay: float = 0.95) -> tuple[list[float], dict[str, float]]:
    """SPIRAL's role-conditioned advantage: z - b_rho with b_rho an EMA of role rho's outcomes.

    Each outcome is judged against the baseline before it, then folds into it:
    b <- decay * b + (1 - decay) * z. A role seen for the first time starts at b = 0.
    Returns (advantages [N], updated baselines).
    """
    b = dict(baselines)
    advantages = []
    for z, role in zip(outcomes, roles, strict=True):
        base = b.get(role, 0.0)
        advantages.append(z - base)
        b[role] = decay * base + (1.0 - decay) * z
    return advantages, b


def mix_values(values: Sequence[float], weights: Sequence[float]) -> float:
    """V = sum_j w_j V_j / sum_j w_j: the weighted mix of estimators, weights normalised.

    values, weights: [J]; weights >= 0 with a positive sum.
    """
    total = sum(weights)
    if total <= 0 or any(w < 0 for w in weights):
        raise ValueError(f"mix weights must be >= 0 with a positive sum, got {list(weights)}")
    return sum(v * w for v, w in zip(values, weights, strict=True)) / total


def staleness_factor(lag: int | None, max_staleness: int | None, rule: str, decay: float) -> float | None:
    """How much a behavior from an adapter `lag` versions behind the one being trained counts.

    None when it is dropped. With no rule (max_staleness None) or an unknown lag (a model name
    without a version), 1. Within max_staleness, 1. Beyond it: rule `drop` -> None; rule
    `reweight` -> decay ** (lag - max_staleness), so the weight shrinks geometrically with each
    version past the limit (decay in (0, 1]).
    """
    if max_staleness is None or lag is None or lag <= max_staleness:
        return 1.0
    if rule == "drop":
        return None
    if rule == "reweight":
        return decay ** (lag - max_staleness)
    raise ValueError(f"unknown stale_rule {rule!r}")
