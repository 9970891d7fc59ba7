"""`maro warmstart`: imitate the scripted bots before self-play, as SPAG and Sotopia-RL start.

The bots play each other with the game engine (no arena, no model); every decision becomes one
supervised example: the prompt the model agent would have been sent for that seat's view and
legal actions (`agents.graph.first_prompt`, the same function the agent uses), and the bot's
action text as the reply. TRL's SFTTrainer fine-tunes a fresh LoRA adapter, placed as the
self-play learner places its own, on the replies only; the adapter is published as the run
folder's first version, so `maro selfplay` on that folder starts from it (and keeps the base
model among its past opponents). Seeds start at `WARMSTART_SEED`, far from the training seeds
and from `maro eval`'s held-out ones.
"""

from __future__ import annotations

import math
import random
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from maro.agents.bots import default_bot, get_bot
from maro.agents.graph import first_prompt
from maro.arena.engine import make_game, seating
from maro.learner.adapters import AdapterRegistry
from maro.learner.config import UpdateConfig

WARMSTART_SEED = 2_000_000
"""Warm-start deals start here: self-play trains on seeds near 0, `maro eval` holds out 1,000,000 on."""
MAX_DECISIONS = 200_000
"""Bound on the examples one warm start collects (matches times decisions per match)."""


class WarmStartConfig(BaseModel):
    """What `maro warmstart` imitates and how long it trains; stored with the adapter."""

    model_config = ConfigDict(extra="forbid")

    games: list[str] = Field(default_factory=lambda: ["kuhn_poker-v1"], min_length=1, max_length=16)
    players: dict[str, int] = Field(default_factory=dict)
    """Seats per game; a game not named plays at its smallest size."""
    bots: dict[str, str] = Field(default_factory=dict)
    """The bot to imitate per game; a game not named uses its default bot (the one self-play meets)."""
    matches: int = Field(200, ge=1, le=20_000)
    """Bot-against-bot matches per game."""
    seed: int = Field(WARMSTART_SEED, ge=0)
    epochs: int = Field(2, ge=1, le=20)
    learning_rate: float = Field(2e-4, gt=0, le=1e-2)
    batch_size: int = Field(8, ge=1, le=256)
    max_length: int = Field(1024, ge=32, le=8192)
    """Prompt + reply tokens kept per example."""
    update: UpdateConfig = Field(default_factory=UpdateConfig)
    """The LoRA placement (rank, alpha, layers, modules) and precision; give self-play's, so the
    adapter continues there as its own."""


def imitation_examples(game_id: str, matches: int, seed: int, players: int | None = None,
                       bot: str | None = None) -> list[dict[str, Any]]:
    """The bot's decisions in `matches` bot-against-bot matches as prompt/completion chat examples.

    Every seat is played by `bot` (the game's default bot) with its own seeded generator; the
    prompt is what a model agent in that seat would be sent, the completion the bot's action."""
    params, count = seating(game_id, None, players)
    policy = get_bot(bot or default_bot(game_id))
    if reason := policy.refusal(game_id):
        raise ValueError(reason)
    examples: list[dict[str, Any]] = []
    for match in range(matches):
        game = make_game(game_id, params)
        state, _ = game.init(seed + match)
        rngs = [random.Random((seed + match) * 1_000_003 + s) for s in range(count)]
        for _turn in range(10_000):
            if state.finished:
                break
            texts = {}
            for seat in sorted(game.acting(state)):
                obs = game.observe(state, seat)
                action = policy.act(obs.view, obs.legal_actions, rngs[seat])
                texts[seat] = action
                examples.append({
                    "prompt": first_prompt(game_id, obs.view, obs.legal_actions),
                    "completion": [{"role": "assistant", "content": action}],
                })
                if len(examples) > MAX_DECISIONS:
                    raise ValueError(f"more than {MAX_DECISIONS} decisions: ask for fewer matches")
            state, _ = game.step(state, texts)
        else:
            raise RuntimeError(f"{game_id} seed {seed + match}: bots did not finish in 10,000 steps")
    return examples


def warm_start(run_dir: Path, base_model_dir: Path, config: WarmStartConfig) -> tuple[str, dict[str, Any]]:
    """Train the imitation adapter and publish it as the run folder's first version."""
    from datasets import Dataset
    from transformers import set_seed
    from transformers.trainer_callback import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    from maro.learner.trainer import _load_policy, summarise_logs

    run_dir = Path(run_dir)
    adapters = AdapterRegistry(run_dir / "adapters")
    if adapters.versions() or (run_dir / "state.json").exists():
        raise ValueError(f"{run_dir} already holds adapters or a self-play run: a warm start is a run's "
                         "first version, so give a new run folder")
    started = time.time()
    examples, per_game = [], {}
    for i, game_id in enumerate(config.games):
        rows = imitation_examples(game_id, config.matches, config.seed + i * config.matches,
                                  config.players.get(game_id), config.bots.get(game_id))
        per_game[game_id] = {"matches": config.matches, "examples": len(rows),
                             "actions": dict(Counter(r["completion"][0]["content"] for r in rows).most_common(8))}
        examples += rows
    set_seed(config.seed)
    model, tokenizer = _load_policy(Path(base_model_dir), None, config.update)
    with tempfile.TemporaryDirectory(prefix="maro-warmstart-") as work:
        args = SFTConfig(
            output_dir=work, use_cpu=_no_gpu(), bf16=config.update.bf16, learning_rate=config.learning_rate,
            lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0, num_train_epochs=config.epochs,
            per_device_train_batch_size=config.batch_size, max_length=config.max_length,
            completion_only_loss=True, packing=False, seed=config.seed, data_seed=config.seed,
            logging_steps=1, report_to="none", save_strategy="no", disable_tqdm=True, gradient_checkpointing=False,
        )
        trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(examples),
                             processing_class=tokenizer)
        trainer.remove_callback(PrinterCallback)
        trainer.train()
        staged = adapters.staging()
        try:
            trainer.model.save_pretrained(staged)
        except BaseException:
            adapters.discard(staged)
            raise
    logs = trainer.state.log_history
    metrics = summarise_logs(logs)
    steps = [e for e in logs if "loss" in e]
    metrics.update({
        "warmstart/examples": float(len(examples)), "warmstart/steps": float(trainer.state.global_step),
        "warmstart/first_loss": steps[0]["loss"] if steps else math.nan,
        "warmstart/last_loss": steps[-1]["loss"] if steps else math.nan,
        "warmstart/last_token_accuracy": steps[-1].get("mean_token_accuracy", math.nan) if steps else math.nan,
        "warmstart/seconds": time.time() - started,
    })
    version = adapters.publish(staged, {
        "parent": None, "stage": "warmstart", "base_model": str(base_model_dir),
        "config": {"warmstart": config.model_dump(mode="json"), "update": config.update.model_dump(mode="json")},
        "data": {"match_ids": [], "games": per_game}, "metrics": metrics,
    })
    return version, metrics


def _no_gpu() -> bool:
    import torch

    return not torch.cuda.is_available()
