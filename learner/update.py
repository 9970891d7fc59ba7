"""One MARO update: finished matches -> credited behaviors -> TRL/PEFT step -> new adapter version."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from maro.arena.store.matches import MatchStore
from maro.learner.adapters import BASE, AdapterRegistry, ModelRef
from maro.learner.branch import BranchConfig, Sampler, branch_samples
from maro.learner.config import UpdateConfig
from maro.learner.credit import Credited, CreditState, MaroConfig, credit
from maro.learner.estimators import EstimatorFactory
from maro.learner.samples import TrainSample
from maro.learner.trainer import train_adapter

log = logging.getLogger(__name__)


class UpdateMode(StrEnum):
    """What one update trains on."""

    LOGGED = "logged"
    """The logged behaviors, credited by MARO (`credit`)."""
    BRANCH = "branch"
    """K fresh candidates per logged decision state, scored by the estimator (`branch`)."""


class LearnerConfig(BaseModel):
    """Everything one update needs; stored with the adapter it produces."""

    model_config = ConfigDict(extra="forbid")

    maro: MaroConfig = Field(default_factory=MaroConfig)
    update: UpdateConfig = Field(default_factory=UpdateConfig)
    mode: UpdateMode = UpdateMode.LOGGED
    """`logged` trains on the logged behaviors; `branch` samples candidates at the logged states."""
    branch: BranchConfig = Field(default_factory=BranchConfig)
    """Settings of the `branch` mode."""


def gpu_settings(config: LearnerConfig) -> LearnerConfig:
    """On a machine with a CUDA GPU, the update in bf16 with its old log-probs recomputed (play's
    recorded ones are another precision's); elsewhere `config` as it is."""
    import torch

    if not torch.cuda.is_available() or config.update.bf16:
        return config
    update = config.update.model_copy(update={"bf16": True, "old_logprobs": "recompute"})
    return config.model_copy(update={"update": update})


@dataclass(frozen=True)
class UpdateResult:
    version: str
    metrics: dict[str, Any]
    samples: int
    state: CreditState | None = None
    """The credit state after this update (the `rae` baselines; the logged mode's): the caller's
    to keep for the next one. None in the branch mode, which keeps none."""


def to_sample(c: Credited) -> TrainSample:
    """A credited behavior as a training sample; play-time log-probs travel when complete, marked
    as the reference's when the base model (`NAME@base`) played them."""
    lps = c.behavior.logprobs
    ids = [t.token_id for t in lps]
    complete = bool(lps) and all(i >= 0 for i in ids)
    return TrainSample(
        behavior_id=c.behavior.id or 0, messages=list(c.behavior.messages), completion=c.behavior.completion,
        advantage=c.advantage, weight=c.weight,
        old_logprobs=[t.logprob for t in lps] if complete else None, old_token_ids=ids if complete else None,
        old_from_reference=complete and ModelRef.parse(c.behavior.model).version == BASE,
        on_policy=c.lag == 0,
    )


def credit_summary(credited: Sequence[Credited], stats: Mapping[str, float] | None = None) -> dict[str, float]:
    """Batch statistics of the credited behaviors, plus credit()'s counters (staleness, estimator)."""
    n = len(credited)
    return {
        "maro/behaviors": float(n),
        "maro/rejected_behaviors": float(sum(not c.behavior.accepted for c in credited)),
        "maro/reward_mean": sum(c.reward for c in credited) / n,
        "maro/advantage_abs_mean": sum(abs(c.advantage) for c in credited) / n,
        "maro/weight_max": max(c.weight for c in credited),
        **(stats or {}),
    }


def run_update(store: MatchStore, adapters: AdapterRegistry, base_model_dir: Path, match_ids: Sequence[str],
               config: LearnerConfig, state: CreditState | None = None, *,
               estimator_factory: EstimatorFactory | None = None, sampler: Sampler | None = None) -> UpdateResult:
    """Turn the behaviors of `match_ids` into samples (by `config.mode`), train from the latest
    adapter, publish the next one. `estimator_factory` and `sampler` replace the configured
    estimator and the policy sampler of the branch mode (tests, custom critics)."""
    started = time.time()
    matches = [m for m in (store.get_match(i, with_events=False) for i in match_ids) if m is not None]
    behaviors = store.behaviors([m.match_id for m in matches])
    parent = adapters.latest()
    init_adapter_dir = adapters.path(parent) if parent else None
    if config.mode == UpdateMode.BRANCH:
        samples, summary = branch_samples(
            matches, behaviors, config.maro, config.branch, config.update, Path(base_model_dir), init_adapter_dir,
            estimator_factory=estimator_factory, sampler=sampler,
        )
        if not samples:
            raise ValueError(f"no informative branch groups in {len(matches)} matches "
                             f"({int(summary.get('branch/states', 0))} states; every group had equal rewards)")
    else:
        result = credit(matches, behaviors, config.maro, state, parent, estimator_factory=estimator_factory)
        credited, stats, state = result.credited, result.stats, result.state
        if config.maro.drop_zero_advantage:
            kept = [c for c in credited if abs(c.advantage) > 1e-9]
            stats["maro/zero_advantage_dropped"] = float(len(credited) - len(kept))
            credited = kept
        if not credited:
            raise ValueError(f"no learnable behaviors in {len(matches)} matches (finished, model-driven, "
                             "with an advantage when zero ones are dropped)")
        samples, summary = [to_sample(c) for c in credited], credit_summary(credited, stats)
    staged = adapters.staging()
    try:
        metrics = train_adapter(
            samples, base_model_dir=Path(base_model_dir), init_adapter_dir=init_adapter_dir, output_dir=staged,
            config=config.update,
        )
    except BaseException:
        adapters.discard(staged)
        raise
    metrics = {**summary, **metrics, "maro/update_seconds": time.time() - started}
    behavior_ids = list(dict.fromkeys(s.behavior_id for s in samples))
    version = adapters.publish(staged, {
        "parent": parent, "base_model": str(base_model_dir), "config": config.model_dump(mode="json"),
        "data": {"match_ids": [m.match_id for m in matches], "behavior_ids": behavior_ids},
        "metrics": metrics,
    })
    log.info("published adapter %s from %d samples of %d matches (%s mode)", version, len(samples), len(matches),
             config.mode.value)
    return UpdateResult(version, metrics, len(samples), state if config.mode != UpdateMode.BRANCH else None)
