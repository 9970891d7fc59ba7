"""The `branch` update mode: K fresh candidates per logged decision state, scored by the estimator, GRPO-style."""

from __future__ import annotations

import gc
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
from pydantic import BaseModel, ConfigDict, Field

from maro.arena.engine import Game, GameError, make_game
from maro.arena.store.records import BehaviorRecord, MatchRecord
from maro.learner import maro
from maro.learner.config import UpdateConfig
from maro.learner.credit import MaroConfig, game_key, learnable
from maro.learner.estimators import Estimator, EstimatorFactory, estimator_stats, make_estimator
from maro.learner.models import eos_ids, load_causal_lm, load_tokenizer
from maro.learner.samples import TrainSample, encode_sample
from maro.learner.variants import recipe

log = logging.getLogger(__name__)


class BranchConfig(BaseModel):
    """How the `branch` mode samples candidates; generation uses `UpdateConfig.temperature`
    (the play temperature) so that the recorded log-probs are those the loss compares against."""

    model_config = ConfigDict(extra="forbid")

    candidates: int = Field(4, ge=2, description="K candidate completions sampled per logged decision state.")
    max_states: int | None = Field(
        64, ge=1, description="At most this many decision states per update, drawn with `seed`; None: all."
    )
    batch_rows: int = Field(16, ge=1, description="Rows (prompts x K) per generate call.")
    seed: int = Field(0, description="Seed of the state draw and of sampling.")


@dataclass(frozen=True)
class Candidate:
    """One sampled completion with its tokens and log_softmax(logits / T) of each sampled token."""

    text: str
    token_ids: list[int]
    logprobs: list[float]


class Sampler(Protocol):
    def sample(self, prompts: Sequence[list[dict]], k: int) -> list[list[Candidate]]:
        """K candidates for each prompt (chat messages), in prompt order."""


@dataclass(frozen=True)
class DecisionState:
    """A logged decision: the accepted model behavior, and the other acting seats' logged actions
    in the same turn (simultaneous phases need them to apply a candidate)."""

    behavior: BehaviorRecord
    key: str  # game_key of its match
    game_id: str
    others: dict[int, str]


class PolicySampler:
    """Samples from the current policy: the base model with the latest adapter (PEFT), by
    `transformers.generate` in batches, plain temperature sampling (no top-k/top-p), log-probs
    from the raw logits of each step exactly as the trainer recomputes them."""

    def __init__(self, base_model_dir: Path, adapter_dir: Path | None, update: UpdateConfig, branch: BranchConfig):
        self.base_model_dir, self.adapter_dir = Path(base_model_dir), adapter_dir
        self.update, self.branch = update, branch
        self.device = "cuda" if torch.cuda.is_available() else "cpu"

    def _load(self):
        tokenizer = load_tokenizer(self.base_model_dir, padding_side=None)
        model = load_causal_lm(self.base_model_dir, dtype="bfloat16" if self.update.bf16 else "float32",
                               adapter=self.adapter_dir)
        return model.to(self.device).eval(), tokenizer

    def _prompt_ids(self, messages: list[dict], tokenizer) -> list[int]:
        # Exactly the trainer's prompt (chat template, left-truncated), so the log-probs line up.
        return encode_sample(TrainSample(0, list(messages), "", 0.0), tokenizer,
                             max_prompt_tokens=self.update.max_prompt_tokens, max_completion_tokens=1).prompt_ids

    @torch.no_grad()
    def sample(self, prompts: Sequence[list[dict]], k: int) -> list[list[Candidate]]:
        from transformers import GenerationConfig

        model, tokenizer = self._load()
        ends = eos_ids(model, tokenizer)
        config = GenerationConfig(
            do_sample=True, temperature=self.update.temperature, top_k=0, top_p=1.0, repetition_penalty=1.0,
            max_new_tokens=self.update.max_completion_tokens, num_return_sequences=k,
            return_dict_in_generate=True, output_logits=True,
            pad_token_id=tokenizer.pad_token_id, eos_token_id=ends,
        )
        per_call = max(1, self.branch.batch_rows // k)
        out: list[list[Candidate]] = []
        # A private generator: seeded sampling without touching the caller's random state.
        with torch.random.fork_rng(devices=None if self.device == "cuda" else []):
            torch.manual_seed(self.branch.seed)
            for start in range(0, len(prompts), per_call):
                encoded = [self._prompt_ids(m, tokenizer) for m in prompts[start:start + per_call]]
                out += self._generate(model, tokenizer, encoded, k, config, set(ends))
        del model
        gc.collect()
        return out

    def _generate(self, model, tokenizer, encoded: list[list[int]], k: int, config, eos_ids: set[int]):
        width = max(len(p) for p in encoded)
        ids = torch.full((len(encoded), width), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, p in enumerate(encoded):  # left padding: every prompt ends where generation starts
            ids[row, width - len(p):] = torch.tensor(p)
            mask[row, width - len(p):] = 1
        result = model.generate(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                                generation_config=config)
        tokens = result.sequences[:, width:]  # [B*K, T], row i*K + j is prompt i's j-th candidate
        logits = torch.stack(result.logits, dim=1).float() / self.update.temperature  # [B*K, T, V]
        logps = torch.log_softmax(logits, dim=-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1).cpu()
        tokens = tokens.cpu()
        grouped: list[list[Candidate]] = [[] for _ in encoded]
        for row in range(tokens.size(0)):
            ids_row = tokens[row].tolist()
            end = next((t + 1 for t, tok in enumerate(ids_row) if tok in eos_ids), len(ids_row))  # EOS kept
            text = tokenizer.decode(ids_row[:end], skip_special_tokens=True)
            grouped[row // k].append(Candidate(text, ids_row[:end], logps[row, :end].tolist()))
        return grouped


def decision_states(matches: Sequence[MatchRecord], behaviors: Sequence[BehaviorRecord]) -> list[DecisionState]:
    """Accepted model behaviors of finished matches, one per (match, seat, turn), in log order."""
    finished = {m.match_id: m for m in matches if m.status == "finished" and m.outcome is not None}
    actions: dict[tuple[str, int], dict[int, str]] = {}
    for b in behaviors:
        if b.accepted and b.match_id in finished:
            actions.setdefault((b.match_id, b.turn), {})[b.seat] = b.action_text
    states, seen = [], set()
    for b in behaviors:
        if b.match_id not in finished or not b.accepted or not learnable(b) or not b.snapshot_before:
            continue
        if (b.match_id, b.seat, b.turn) in seen:
            continue
        seen.add((b.match_id, b.seat, b.turn))
        others = {s: t for s, t in actions.get((b.match_id, b.turn), {}).items() if s != b.seat}
        match = finished[b.match_id]
        states.append(DecisionState(b, game_key(match), match.game_id, others))
    return states


def _apply(game: Game, state, seat: int, text: str, others: dict[int, str], rng: random.Random) -> str:
    """The snapshot after the candidate's action (the other acting seats play their logged actions,
    else the game's default, else a random legal one); InvalidAction when the candidate is illegal."""
    game.validate(state, seat, text)
    texts = {seat: text}
    for other in sorted(game.acting(state) - {seat}):
        texts[other] = others.get(other) or game.default_action(state, other) or game.random_action(state, other, rng)
    after, _ = game.step(state, texts)
    return game.snapshot(after)


def score_candidates(states: Sequence[DecisionState], candidates: Sequence[Sequence[Candidate]], config: MaroConfig,
                     estimators: dict[str, Estimator], games: dict[str, Game], seed: int = 0,
                     ) -> tuple[list[list[float]], list[list[bool]]]:
    """r = V_i(s') - V_i(s) per candidate (the direct utility), `invalid_reward` for an illegal one.

    Returns rewards [states][K] and whether each candidate was legal [states][K].
    """
    rng = random.Random(seed)
    afters: list[list[str | None]] = []
    for st, cands in zip(states, candidates, strict=True):
        game, b = games[st.key], st.behavior
        before = game.restore(b.snapshot_before)
        row = []
        for c in cands:
            try:
                row.append(_apply(game, before, b.seat, c.text, st.others, rng))
            except GameError:
                row.append(None)
        afters.append(row)
    for key, est in estimators.items():  # one batch per estimator: judge calls run concurrently
        qs = [(st.behavior.snapshot_before, st.behavior.seat) for st in states if st.key == key]
        qs += [(s, st.behavior.seat) for st, row in zip(states, afters) if st.key == key for s in row if s]
        est.values(qs)
    rewards = []
    for st, row in zip(states, afters):
        est, seat = estimators[st.key], st.behavior.seat
        v0 = est.value(st.behavior.snapshot_before, seat)
        rewards.append([maro.direct_utility(v0, est.value(s, seat)) if s else config.invalid_reward for s in row])
    return rewards, [[s is not None for s in row] for row in afters]


def group_advantages(rewards: Sequence[Sequence[float]], eps: float = 1e-6) -> list[list[float] | None]:
    """A = (r - mean) / (std + eps) within each state's K candidates (population std); None for a
    group with zero variance: it says nothing about which candidate was better and is left out."""
    out: list[list[float] | None] = []
    for group in rewards:
        advantages = maro.group_normalise(group, [0] * len(group), eps)
        out.append(advantages if any(a != 0.0 for a in advantages) else None)
    return out


def branch_samples(matches: Sequence[MatchRecord], behaviors: Sequence[BehaviorRecord], maro_config: MaroConfig,
                   branch: BranchConfig, update: UpdateConfig, base_model_dir: Path, adapter_dir: Path | None, *,
                   estimator_factory: EstimatorFactory | None = None, sampler: Sampler | None = None,
                   ) -> tuple[list[TrainSample], dict[str, float]]:
    """Training samples of the branch mode and its metrics.

    States: accepted model behaviors of the finished matches (at most `branch.max_states`, drawn
    with the seed). Per state, K candidates from the current policy, scored by the estimator;
    group-relative advantages; role weights over the kept states (w_rho of MARO.md with `beta`,
    all 1 for the outcome, rae and maro-no-roles variants). The sample's old log-probs are the
    sampler's, so the importance ratio starts at 1 up to numerics.
    """
    states = decision_states(matches, behaviors)
    if branch.max_states is not None and len(states) > branch.max_states:
        chosen = sorted(random.Random(branch.seed).sample(range(len(states)), branch.max_states))
        states = [states[i] for i in chosen]
    if not states:
        return [], {"branch/states": 0.0}
    games, estimators = _games_and_estimators(states, matches, estimator_factory
                                              or (lambda g: make_estimator(maro_config, g)))
    started = time.perf_counter()
    sampler = sampler or PolicySampler(base_model_dir, adapter_dir, update, branch)
    candidates = sampler.sample([st.behavior.messages for st in states], branch.candidates)
    generate_seconds = time.perf_counter() - started
    rewards, legal = score_candidates(states, candidates, maro_config, estimators, games, branch.seed)
    advantages = group_advantages(rewards)

    kept = [i for i, a in enumerate(advantages) if a is not None]
    roles = [(states[i].game_id, states[i].behavior.role) for i in kept]
    if recipe(maro_config.variant).role_weights:
        weights = maro.role_weights(roles, maro_config.beta)
    else:
        weights = [1.0] * len(kept)
    samples: list[TrainSample] = []
    for i, w in zip(kept, weights):
        b = states[i].behavior
        for c, a in zip(candidates[i], advantages[i]):
            samples.append(TrainSample(
                behavior_id=b.id or 0, messages=list(b.messages), completion=c.text, advantage=a, weight=w,
                old_logprobs=list(c.logprobs) if c.logprobs else None, old_token_ids=list(c.token_ids) or None,
            ))
    metrics = _branch_metrics(states, candidates, rewards, legal, kept, samples, generate_seconds)
    for est in estimators.values():
        for k, v in estimator_stats(est).items():
            metrics[k] = metrics.get(k, 0.0) + v
    log.info("branch: %d states x %d candidates, %d groups kept", len(states), branch.candidates, len(kept))
    return samples, metrics


def _games_and_estimators(states: list[DecisionState], matches: Sequence[MatchRecord],
                          factory: EstimatorFactory) -> tuple[dict[str, Game], dict[str, Estimator]]:
    """One game and one estimator per (game, params) the states come from."""
    by_id = {m.match_id: m for m in matches}
    games: dict[str, Game] = {}
    estimators: dict[str, Estimator] = {}
    for st in states:
        if st.key not in games:
            m = by_id[st.behavior.match_id]
            games[st.key] = make_game(m.game_id, m.params)
            estimators[st.key] = factory(games[st.key])
    return games, estimators


def _branch_metrics(states, candidates, rewards, legal, kept, samples, generate_seconds: float) -> dict[str, float]:
    flat = [r for row in rewards for r in row]
    n_cands = sum(len(row) for row in candidates)
    invalid = sum(not ok for row in legal for ok in row)
    return {
        "branch/states": float(len(states)),
        "branch/candidates": float(n_cands),
        "branch/valid_rate": 1.0 - invalid / n_cands if n_cands else 0.0,
        "branch/groups_kept": float(len(kept)),
        "branch/groups_zero_variance": float(len(states) - len(kept)),
        "branch/reward_mean": sum(flat) / len(flat) if flat else 0.0,
        "branch/completion_tokens_mean": sum(len(c.token_ids) for row in candidates for c in row) / max(1, n_cands),
        "branch/generate_seconds": generate_seconds,
        "maro/behaviors": float(len(samples)),
        "maro/rejected_behaviors": float(sum(not legal[i][j] for i in kept for j in range(len(legal[i])))),
        "maro/reward_mean": sum(flat) / len(flat) if flat else 0.0,
        "maro/advantage_abs_mean": sum(abs(s.advantage) for s in samples) / len(samples) if samples else 0.0,
        "maro/weight_max": max((s.weight for s in samples), default=0.0),
    }
