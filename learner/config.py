"""The learner's credit settings: MARO's switches and the utility estimators' settings, in one
module that the credit assignment and the estimators both read (and neither owns)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

from maro.agents.llm import ModelSettings
from maro.learner.maro import Variant

EstimatorName = Literal["game", "rollout", "judge"]


class RolloutConfig(BaseModel):
    """Monte-Carlo continuation from the snapshot against an opponent pool."""

    model_config = ConfigDict(extra="forbid")

    samples: int = Field(8, ge=1)
    """K continuations per (snapshot, seat); the estimate is the mean of the seat's final outcomes."""
    pool: list[str] = Field(default_factory=lambda: ["bot", "random"], min_length=1)
    """Policies drawn per seat and continuation: `bot` (the game's default scripted bot), `bot:<name>`,
    `random` (uniform legal action) or `model` (the model policy handed to `make_estimator`)."""
    max_steps: int = Field(200, ge=1)
    """Cap on steps per continuation; a capped continuation scores the game's heuristic there."""
    seed: int = 0


def _default_judge_model() -> ModelSettings:
    return ModelSettings(temperature=0.0, max_tokens=32, logprobs=False)


class JudgeConfig(BaseModel):
    """An LLM judge of the seat's chances, from the seat's own view only."""

    model_config = ConfigDict(extra="forbid")

    model: ModelSettings = Field(default_factory=_default_judge_model)
    """Which model judges (any LiteLLM model string); temperature 0 keeps answers cacheable."""
    cache_path: Path | None = None
    """SQLite file of valid answers by content hash, so reruns do not call again; None: memory only."""
    fallback: Literal["neutral", "game"] = "neutral"
    """Value for an unusable answer or a failed call: 0, or the game's heuristic. Counted either way."""
    concurrency: int = Field(4, ge=1)
    """Judge calls in flight at once when many states are evaluated together."""

    @field_serializer("model")
    def _without_key(self, model: ModelSettings) -> dict:
        # The resolved config is stored with every adapter: never write a key there (hosted
        # providers read theirs from the environment).
        return model.model_dump(mode="json") | {"api_key": None}


class MixConfig(BaseModel):
    """Weights of the estimators mixed; normalised to sum 1, zero weights leave one out."""

    model_config = ConfigDict(extra="forbid")

    weights: dict[EstimatorName, float] = Field(default_factory=lambda: {"game": 0.5, "rollout": 0.5})

    @field_validator("weights")
    @classmethod
    def _check(cls, weights: dict[str, float]) -> dict[str, float]:
        if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise ValueError("mix weights must be >= 0 with a positive sum")
        return weights


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
    drop_zero_advantage: bool = False
    """Leave behaviors whose advantage is 0 out of the update (SPIRAL does): they add no policy
    gradient, only the KL term's pull and the compute."""
    estimator: Literal["game", "rollout", "judge", "mix"] = "game"
    """Utility estimator V_i(s): `game` (each game's heuristic), `rollout` (continuations against an
    opponent pool), `judge` (an LLM through LiteLLM) or `mix` (weighted mix of those)."""
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    """Settings of the `rollout` estimator (also when mixed)."""
    judge: JudgeConfig = Field(default_factory=JudgeConfig)
    """Settings of the `judge` estimator (also when mixed)."""
    mix: MixConfig = Field(default_factory=MixConfig)
    """Weights of the `mix` estimator."""
    max_staleness: int | None = Field(None, ge=0)
    """Off-policy limit: versions a behavior's adapter may lag behind the adapter being trained
    from (`smollm2@v0002` under v0005 lags 3; `@base` is version 0). None: no limit."""
    stale_rule: Literal["drop", "reweight"] = "drop"
    """Beyond `max_staleness`: `drop` the behavior, or `reweight` its weight by
    `stale_decay ** (lag - max_staleness)`. Behaviors whose model names no version are kept as is."""
    stale_decay: float = Field(0.5, gt=0, le=1)
    """Per-version weight factor past the limit under `stale_rule = reweight`."""
