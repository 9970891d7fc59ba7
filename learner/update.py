"""One MARO update: finished matches -> credited behaviors -> TRL/PEFT step -> new adapter version."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from maro.arena.store import MatchStore
from maro.learner.adapters import AdapterRegistry
from maro.learner.credit import Credited, CreditState, MaroConfig, credit
from maro.learner.samples import TrainSample
from maro.learner.trainer import UpdateConfig, train_adapter

log = logging.getLogger(__name__)


class LearnerConfig(BaseModel):
    """Everything one update needs; stored with the adapter it produces."""

    model_config = ConfigDict(extra="forbid")

    maro: MaroConfig = Field(default_factory=MaroConfig)
    update: UpdateConfig = Field(default_factory=UpdateConfig)


@dataclass(frozen=True)
class UpdateResult:
    version: str
    metrics: dict[str, Any]
    samples: int


def to_sample(c: Credited) -> TrainSample:
    """A credited behavior as a training sample; play-time log-probs travel when complete."""
    lps = c.behavior.logprobs
    ids = [t.token_id for t in lps]
    complete = bool(lps) and all(i >= 0 for i in ids)
    return TrainSample(
        behavior_id=c.behavior.id or 0, messages=list(c.behavior.messages), completion=c.behavior.completion,
        advantage=c.advantage, weight=c.weight,
        old_logprobs=[t.logprob for t in lps] if complete else None, old_token_ids=ids if complete else None,
    )


def credit_summary(credited: Sequence[Credited]) -> dict[str, float]:
    n = len(credited)
    return {
        "maro/behaviors": float(n),
        "maro/rejected_behaviors": float(sum(not c.behavior.accepted for c in credited)),
        "maro/reward_mean": sum(c.reward for c in credited) / n,
        "maro/advantage_abs_mean": sum(abs(c.advantage) for c in credited) / n,
        "maro/weight_max": max(c.weight for c in credited),
    }


def run_update(store: MatchStore, adapters: AdapterRegistry, base_model_dir: Path, match_ids: Sequence[str],
               config: LearnerConfig, state: CreditState | None = None) -> UpdateResult:
    """Credit the behaviors of `match_ids`, train from the latest adapter, publish the next one."""
    started = time.time()
    matches = [m for m in (store.get_match(i, with_events=False) for i in match_ids) if m is not None]
    credited = credit(matches, store.behaviors([m.match_id for m in matches]), config.maro, state)
    if not credited:
        raise ValueError(f"no learnable behaviors in {len(matches)} matches (finished, model-driven)")
    parent = adapters.latest()
    staged = adapters.staging()
    try:
        metrics = train_adapter(
            [to_sample(c) for c in credited], base_model_dir=Path(base_model_dir),
            init_adapter_dir=adapters.path(parent) if parent else None, output_dir=staged, config=config.update,
        )
    except BaseException:
        adapters.discard(staged)
        raise
    metrics = {**credit_summary(credited), **metrics, "maro/update_seconds": time.time() - started}
    version = adapters.publish(staged, {
        "parent": parent, "base_model": str(base_model_dir), "config": config.model_dump(mode="json"),
        "data": {"match_ids": [m.match_id for m in matches], "behavior_ids": [c.behavior.id for c in credited]},
        "metrics": metrics,
    })
    log.info("published adapter %s from %d behaviors of %d matches", version, len(credited), len(matches))
    return UpdateResult(version, metrics, len(credited))
