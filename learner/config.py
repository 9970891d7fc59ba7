"""The learner's settings: MARO's credit switches, the utility estimators' settings and one
update's hyper-parameters, in one module that the credit assignment, the estimators, the trainer
and the loop all read (and none owns)."""

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
    """Utility estimator V_i(s): `game` (each game's heuristic; rollouts for games without one, as
    OpenSpiel's and TextArena's), `rollout` (continuations against an
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


class UpdateConfig(BaseModel):
    """Hyper-parameters of one MARO update (one call of `train_adapter`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    learning_rate: float = Field(
        5e-5, gt=0, description="AdamW learning rate, constant over the update; LoRA wants ~10x a full fine-tune's."
    )
    epochs: int = Field(1, ge=1, description="Passes over the samples; each sample is used once per pass.")
    batch_size: int = Field(
        8, ge=2, description="Samples per micro-batch (per device). TRL's GRPOConfig needs >= 2 rows per batch."
    )
    grad_accum: int = Field(1, ge=1, description="Micro-batches accumulated into one optimizer step.")
    max_steps: int | None = Field(None, ge=1, description="Optional cap on optimizer steps (overrides epochs).")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm.")
    lora_r: int = Field(8, ge=1, description="LoRA rank.")
    lora_alpha: int = Field(16, ge=1, description="LoRA scaling numerator (scale = alpha / r).")
    lora_dropout: float = Field(0.0, ge=0, lt=1, description="LoRA dropout; 0 keeps ratio == 1 exact on-policy.")
    lora_layers: int | None = Field(
        None, ge=1, description=(
            "Put LoRA on the top N decoder layers only (None = every layer). Backward then stops at the lowest"
            " adapted layer: on a CPU the step costs about (L + 2N) / 3L of the full one for an L-layer model."
        ),
    )
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
        min_length=1,
        description="Module names that receive a LoRA adapter (a fresh adapter only; a loaded one keeps its own).",
    )
    epsilon: float = Field(0.2, gt=0, lt=1, description="PPO clip range: ratio clipped to [1-eps, 1+eps].")
    beta: float = Field(
        0.04, ge=0, description="KL penalty (k3 estimator) to the base model with the adapter disabled; 0 turns it off."
    )
    loss_type: Literal["grpo", "dapo"] = Field(
        "grpo",
        description=(
            "Aggregation of the clipped per-token PG loss. 'grpo': mean over each completion's tokens, then over"
            " behaviors, so every behavior counts once whatever its length (MARO credits behaviors, not tokens)."
            " 'dapo': sum over all tokens / token count, so longer completions weigh more."
        ),
    )
    max_prompt_tokens: int = Field(768, ge=1, description="Prompt tokens kept, truncated from the left.")
    max_completion_tokens: int = Field(64, ge=1, description="Completion tokens kept, truncated from the right.")
    temperature: float = Field(
        1.0, gt=0, description=(
            "Temperature of the policy whose log-probs are compared: set it to the sampling temperature of"
            " play, since the model server records log_softmax(logits / T) of the sampled tokens."
        ),
    )
    seed: int = Field(0, description="Seed for model init, sample order and LoRA init.")
    bf16: bool = Field(False, description="Load and train in bfloat16 (about 1.5x faster on CPU); fp32 otherwise.")
    gradient_checkpointing: bool = Field(False, description="Trade compute for memory on long prompts.")
    trunk_cache: bool = Field(
        True, description=(
            "Run the decoder layers below the lowest LoRA layer once per sample and reuse their hidden"
            " states for every forward of the update (policy, old policy, reference): exact, since they"
            " hold no trainable parameter; with LoRA on the top 8 of 30 layers a reference forward costs"
            " about a quarter of a full one. Off: every forward runs the whole model (TRL's path)."
        ),
    )
    share_prefix: bool = Field(
        True, description=(
            "With the trunk cache: the prompt tokens every row of a micro-batch starts with (a game's"
            " system prompt and rules) go through the layers once per micro-batch instead of once per"
            " row, in the trunk and in every forward of the top layers, training's included. The same"
            " function of the weights in fewer tokens; in bf16 it rounds like any other batch layout. Measured"
            " (docs/benchmarks.md): 13% off an update step on bargaining, about 30% on Kuhn poker."
        ),
    )
    old_logprobs: Literal["recorded", "recompute"] = Field(
        "recorded", description=(
            "The old policy of the clipped ratio for behaviors the trained-from policy played. 'recorded':"
            " their play-time log-probs where they line up (exact only if play ran in the training"
            " precision). 'recompute': the policy's own log-probs at the start of the update, in the"
            " training precision (a bf16 update of bf16 play); behaviors of older versions keep their"
            " recorded ones either way. Without the trunk cache, recomputed means the current policy's."
        ),
    )
    base_logprobs_as_reference: bool | None = Field(
        None, description=(
            "Use the play-time log-probs of behaviors played by the base model (`NAME@base`) as the KL"
            " reference instead of a reference forward, for micro-batches made only of such behaviors."
            " Exact only when the server that played them ran this base model, in fp32, sampling at"
            " `temperature`: `maro selfplay` turns it on (it plays and trains at one temperature on its"
            " own model server); leave it off for logs of other servers or temperatures. None (the default):"
            " off, unless the self-play loop turns it on. With the trunk cache the reference is computed"
            " once per sample (cheap) and this setting is not used."
        ),
    )
