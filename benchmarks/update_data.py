"""Behavior records for the update benchmark: matches of random legal play recorded as the arena
records them, or read from a match store, with play-time log-probs as the model server records
them. Used by benchmarks/update_speed.py."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from pathlib import Path

import torch

from maro.arena.engine import make_game
from maro.arena.store.records import BehaviorRecord, MatchRecord, SeatRecord, TokenLogprob
from maro.learner.config import UpdateConfig
from maro.learner.samples import TrainSample, collate, encode_sample
from maro.learner.trainer import _load_policy

PLAYED_BY = "smollm2@base"  # what the model server names the base policy; credit() reads its version


def play_matches(game_id: str, matches: int, *, seed: int = 0, params: dict | None = None,
                 model: str = PLAYED_BY) -> tuple[list[MatchRecord], list[BehaviorRecord]]:
    """K finished matches of random legal play, recorded as MatchRunner records them: one accepted
    BehaviorRecord per acting seat and turn (messages = render_prompt of the seat's observation,
    completion = the action text), and a MatchRecord with the outcome."""
    game = make_game(game_id, params)
    render = game.game_text.render_prompt
    records, behaviors = [], []
    for m in range(matches):
        match_seed = seed + m
        match_id = f"bench-{game_id}-{match_seed:05d}"
        rng = random.Random(match_seed)
        state, _ = game.init(match_seed)
        roles = [game.role(state, s) for s in range(game.num_players())]
        index, turn = [0] * game.num_players(), 0
        while not state.finished:
            acting = sorted(game.acting(state))
            texts, prompts = {}, {}
            for seat in acting:
                obs = game.observe(state, seat)
                prompts[seat] = render(obs.view, obs.legal_actions)
                texts[seat] = game.random_action(state, seat, rng)
            after, _ = game.step(state, texts)
            for seat in acting:
                behaviors.append(BehaviorRecord(
                    match_id=match_id, seat=seat, role=game.role(state, seat), turn=turn, index=index[seat],
                    attempt=0, accepted=True, action_text=texts[seat], messages=prompts[seat],
                    completion=texts[seat], model=model, snapshot_before=game.snapshot(state),
                    snapshot_after=game.snapshot(after), id=len(behaviors) + 1,
                ))
                index[seat] += 1
            state, turn = after, turn + 1
        records.append(MatchRecord(
            match_id=match_id, game_id=game_id, seed=match_seed, params=game.params.model_dump(mode="json"),
            status="finished", seats=tuple(SeatRecord(seat=s, kind="remote", name=f"p{s}", role=r)
                                           for s, r in enumerate(roles)),
            outcome=tuple(state.outcome), end_reason=state.end_reason,
        ))
    return records, behaviors


def load_store(path: str, game_id: str, matches: int) -> tuple[list[MatchRecord], list[BehaviorRecord]]:
    """The newest `matches` finished matches of `game_id` in a match store, and their behaviors."""
    from maro.arena.store.matches import MatchStore

    store = MatchStore(path)
    try:
        records = store.list_matches(game_id=game_id, status="finished", limit=matches, newest_first=True)
        return records, store.behaviors([m.match_id for m in records])
    finally:
        store.close()


@torch.no_grad()
def attach_logprobs(behaviors: Sequence[BehaviorRecord], model, tokenizer, config: UpdateConfig,
                    scored: set[int] | None = None, chunk: int = 16) -> list[BehaviorRecord]:
    """Behaviors with per-token log-probs of their completion (text + EOS), as the model server
    records them at play time: under `model` for the behavior ids in `scored` (all when None),
    placeholder zeros for the others (same tokens: what to_sample handles, without the forwards).
    Behaviors that already carry log-probs are kept as they are."""
    todo = [i for i, b in enumerate(behaviors) if b.messages and b.completion and not b.logprobs]
    out = list(behaviors)
    for start in range(0, len(todo), chunk):
        rows = todo[start:start + chunk]
        encoded = [encode_sample(TrainSample(0, behaviors[i].messages, behaviors[i].completion, 0.0), tokenizer,
                                 max_prompt_tokens=config.max_prompt_tokens,
                                 max_completion_tokens=config.max_completion_tokens) for i in rows]
        logps = torch.zeros(len(rows), max(len(e.completion_ids) for e in encoded))
        forward = [r for r, i in enumerate(rows) if scored is None or behaviors[i].id in scored]
        if forward:
            batch = collate([encoded[r] for r in forward], tokenizer.pad_token_id)
            ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], 1)
            mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], 1)
            c_len = batch["completion_ids"].size(1)
            logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=c_len + 1).logits[:, :-1].float()
            picked = torch.log_softmax(logits, -1).gather(2, batch["completion_ids"].unsqueeze(2)).squeeze(2)
            logps[forward, :c_len] = picked
        for row, i in enumerate(rows):
            token_ids = encoded[row].completion_ids
            tokens = tokenizer.convert_ids_to_tokens(token_ids)
            out[i] = dataclasses.replace(behaviors[i], logprobs=tuple(
                TokenLogprob(t, tid, float(lp)) for t, tid, lp in zip(tokens, token_ids, logps[row].tolist())))
    return out


def with_logprobs(behaviors: Sequence[BehaviorRecord], model_dir: Path, bf16: bool = False,
                  scored: set[int] | None = None) -> list[BehaviorRecord]:
    """`attach_logprobs` under the base model of `model_dir` (what played as `smollm2@base`)."""
    config = UpdateConfig(bf16=bf16)
    model, tokenizer = _load_policy(Path(model_dir), None, config)
    return attach_logprobs(behaviors, model.eval(), tokenizer, config, scored)


def tokenizer_for(model_dir: Path):
    """The tokenizer as the trainer loads it (pad token set)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
