"""From logged matches to per-behavior advantages and weights, for every MARO variant."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field

from maro.arena.engine import Game, make_game
from maro.arena.records import BehaviorRecord, MatchRecord
from maro.learner import maro
from maro.learner.maro import Variant


class MaroConfig(BaseModel):
    """How behaviors are credited (shared MARO.md); every switch can be ablated."""

    model_config = ConfigDict(extra="forbid")

    variant: Variant = Variant.MARO
    alpha: float = Field(0.3, ge=0, le=1)
    """Share of the direct utility u_k in the per-behavior reward."""
    lambda_: float = Field(0.9, ge=0, le=1)
    """GAE blend of the TD decomposition: 0 = one-step TD credit, 1 = z - V(s_k)."""
    beta: float = Field(1.0, ge=0)
    """Role-weight exponent: 1 = every role the same total weight, 0 = off."""
    rae_decay: float = Field(0.95, ge=0, lt=1)
    """EMA decay of the role baselines in the `rae` variant."""
    include_rejected: bool = True
    """Train on attempts the arena refused, with `invalid_reward`, so the format is learnt."""
    invalid_reward: float = Field(-1.0, ge=-1, le=1)
    estimator: str = "game"
    """Utility estimator; `game` uses each game's value heuristic on the logged snapshots."""


@dataclass(frozen=True)
class Credited:
    """One behavior with its MARO reward, advantage and weight."""

    behavior: BehaviorRecord
    reward: float
    advantage: float
    weight: float


@dataclass
class CreditState:
    """What persists between updates (the `rae` baselines)."""

    baselines: dict[str, float] = field(default_factory=dict)


class GameEstimator:
    """V_i(s) from the game's own heuristic on a restored snapshot."""

    def __init__(self, game: Game):
        self.game = game

    @lru_cache(maxsize=65536)  # noqa: B019 (estimators live as long as one update)
    def value(self, snapshot: str, seat: int) -> float:
        return float(self.game.value(self.game.restore(snapshot), seat))


def learnable(b: BehaviorRecord) -> bool:
    """Model-driven behaviors only: bots and fallbacks sent no prompt."""
    return bool(b.messages) and bool(b.completion) and not b.fallback


def credit(matches: Sequence[MatchRecord], behaviors: Sequence[BehaviorRecord], config: MaroConfig,
           state: CreditState | None = None) -> list[Credited]:
    """Rewards per behavior by variant, then role handling; returns learnable behaviors only."""
    state = state if state is not None else CreditState()
    by_id = {m.match_id: m for m in matches if m.status == "finished" and m.outcome is not None}
    estimators: dict[str, GameEstimator] = {}
    per_seat: dict[tuple[str, int], list[BehaviorRecord]] = defaultdict(list)
    rejected: list[BehaviorRecord] = []
    for b in behaviors:
        if b.match_id not in by_id or not learnable(b):
            continue
        if b.accepted:
            per_seat[(b.match_id, b.seat)].append(b)
        elif config.include_rejected:
            rejected.append(b)
    items: list[tuple[BehaviorRecord, float]] = []
    for (match_id, seat), seq in per_seat.items():
        match = by_id[match_id]
        if match_id not in estimators:
            estimators[match_id] = GameEstimator(make_game(match.game_id, match.params))
        seq.sort(key=lambda b: b.index)
        rewards = _seat_rewards(seq, match.outcome[seat], f"{match.game_id}:{seq[0].role}",
                                estimators[match_id], config, state)
        items += zip(seq, rewards)
    items += [(b, config.invalid_reward) for b in rejected]
    if not items:
        return []
    records, rewards = [b for b, _ in items], [r for _, r in items]
    roles = [(by_id[b.match_id].game_id, b.role) for b in records]
    if config.variant in (Variant.OUTCOME, Variant.RAE):
        advantages, weights = rewards, [1.0] * len(rewards)
    elif config.variant == Variant.MARO_NO_ROLES:
        advantages, weights = maro.group_normalise(rewards, [0] * len(rewards)), [1.0] * len(rewards)
    else:
        advantages, weights = maro.group_normalise(rewards, roles), maro.role_weights(roles, config.beta)
    return [Credited(b, r, a, w) for b, r, a, w in zip(records, rewards, advantages, weights)]


def _seat_rewards(seq: list[BehaviorRecord], z: float, role_key: str, est: GameEstimator,
                  config: MaroConfig, state: CreditState) -> list[float]:
    """Per-behavior rewards of one seat's accepted behaviors, in order."""
    variant = config.variant
    if variant == Variant.OUTCOME:
        return [z] * len(seq)
    if variant == Variant.RAE:
        (advantage,), state.baselines = maro.ema_baselines(state.baselines, [z], [role_key], config.rae_decay)
        return [advantage] * len(seq)
    before = [est.value(b.snapshot_before, b.seat) for b in seq]
    after = [est.value(b.snapshot_after, b.seat) for b in seq]
    utilities = [maro.direct_utility(v0, v1) for v0, v1 in zip(before, after)]
    if variant == Variant.MARO_NO_DECOMPOSE:
        credits = [z] * len(seq)
    else:
        credits = maro.td_decompose(before, z, config.lambda_)
    alpha = 0.0 if variant == Variant.MARO_NO_UTILITY else config.alpha
    return [maro.mix_reward(c, u, alpha) for c, u in zip(credits, utilities)]
