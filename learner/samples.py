"""Training samples for the MARO update: one logged behavior, its credit, and its tokenisation."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class TrainSample:
    """One logged behavior as the learner sees it: prompt, completion and MARO credit.

    `old_logprobs[i]` is log pi_old(old_token_ids[i] | prompt, old_token_ids[:i]) recorded at play
    time at the sampling temperature (UpdateConfig.temperature must match it). Both lists are optional; when missing or inconsistent with
    `completion`, the trainer recomputes the old log-probs with the current policy (ratio 1).
    `old_from_reference` marks log-probs recorded from the base model itself (a `@base` behavior):
    the base is also the KL reference, so they stand in for the reference forward too.
    `on_policy` marks behaviors of the policy the update trains from (UpdateConfig.old_logprobs
    `recompute` recomputes theirs); an older version's keep their recorded log-probs.
    """

    behavior_id: int
    messages: list[dict]  # the chat messages the agent sent to the model (the prompt)
    completion: str  # the text the model produced
    advantage: float  # MARO advantage A_b (already role-normalised)
    weight: float = 1.0  # role weight w_b (> 0)
    old_logprobs: list[float] | None = None  # per-token log-probs recorded at play time
    old_token_ids: list[int] | None = None  # the token ids those log-probs belong to
    old_from_reference: bool = False  # old_logprobs came from the base model (the KL reference)
    on_policy: bool = True  # played by the policy this update starts from

    def __post_init__(self) -> None:
        if not math.isfinite(self.advantage):
            raise ValueError(f"behavior {self.behavior_id}: advantage must be finite, got {self.advantage}")
        # The weight is folded into the advantage, which is exact only for w > 0 (see trainer).
        if not (math.isfinite(self.weight) and self.weight > 0):
            raise ValueError(f"behavior {self.behavior_id}: weight must be finite and > 0, got {self.weight}")
        if not self.messages:
            raise ValueError(f"behavior {self.behavior_id}: messages (the prompt) must not be empty")


@dataclass(frozen=True)
class EncodedSample:
    """A sample in token space: prompt ids, completion ids and, if aligned, their recorded log-probs."""

    prompt_ids: list[int]
    completion_ids: list[int]
    old_logprobs: list[float] | None  # None: recompute with the current policy
    old_is_reference: bool = False  # old_logprobs are also the reference (base model) log-probs


def _recorded_ids_match(sample: TrainSample, tokenizer) -> bool:
    """Whether `old_token_ids` decode to `completion` (special tokens and outer whitespace aside),
    or run past it only within their last token: a reply stopped at a stop string keeps the
    token that completed it (`]` may come as `].`), and those sampled tokens are what to train on."""
    if not sample.old_token_ids:
        return False
    text = tokenizer.decode(sample.old_token_ids, skip_special_tokens=True).strip()
    completion = sample.completion.strip()
    if text == completion:
        return True
    head = tokenizer.decode(sample.old_token_ids[:-1], skip_special_tokens=True).strip()
    return bool(completion) and text.startswith(completion) and len(head) < len(completion)


def encode_sample(
    sample: TrainSample, tokenizer, *, max_prompt_tokens: int, max_completion_tokens: int,
    recompute_on_policy: bool = False,
) -> EncodedSample:
    """Tokenise one sample the way the model saw it at play time.

    Prompt: the chat template with the generation prompt, truncated from the left (the most
    recent turns matter most). Completion: the recorded token ids when they decode to the
    completion text (so recorded log-probs line up token for token), else the text plus EOS.
    Both are truncated on the right to `max_completion_tokens`. `recompute_on_policy` drops the
    recorded log-probs of an on-policy sample (the trainer recomputes them); the token ids stay.
    """
    prompt_text = tokenizer.apply_chat_template(sample.messages, add_generation_prompt=True, tokenize=False)
    full_prompt = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    prompt_ids = full_prompt[-max_prompt_tokens:]

    old_logprobs = None
    if _recorded_ids_match(sample, tokenizer):
        completion_ids = list(sample.old_token_ids)
        if sample.old_logprobs is not None and len(sample.old_logprobs) == len(completion_ids):
            old_logprobs = [float(x) for x in sample.old_logprobs][:max_completion_tokens]
    else:
        completion_ids = tokenizer(sample.completion, add_special_tokens=False)["input_ids"]
        completion_ids.append(tokenizer.eos_token_id)
    completion_ids = completion_ids[:max_completion_tokens]
    if old_logprobs is not None and not all(math.isfinite(x) for x in old_logprobs):
        old_logprobs = None
    if recompute_on_policy and sample.on_policy:
        old_logprobs = None
    # A cut prompt conditions the policy on less than the base saw at play time: not its reference.
    untruncated = len(full_prompt) <= max_prompt_tokens
    return EncodedSample(prompt_ids, completion_ids, old_logprobs,
                         old_is_reference=old_logprobs is not None and sample.old_from_reference and untruncated)


def collate(encoded: list[EncodedSample], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Pad a batch the way GRPOTrainer expects: prompts on the left, completions on the right.

    Returns prompt_ids/prompt_mask (B, P), completion_ids/completion_mask (B, C) and
    old_logps (B, C, zero where missing) with has_old_logps (B,) marking the rows recorded and
    old_is_reference (B,) the rows whose recorded log-probs are the base model's.
    """
    batch = len(encoded)
    p_len = max(len(e.prompt_ids) for e in encoded)
    c_len = max(len(e.completion_ids) for e in encoded)
    prompt_ids = torch.full((batch, p_len), pad_token_id, dtype=torch.long)
    prompt_mask = torch.zeros((batch, p_len), dtype=torch.long)
    completion_ids = torch.full((batch, c_len), pad_token_id, dtype=torch.long)
    completion_mask = torch.zeros((batch, c_len), dtype=torch.long)
    old_logps = torch.zeros((batch, c_len), dtype=torch.float32)
    has_old = torch.zeros(batch, dtype=torch.bool)
    old_is_ref = torch.zeros(batch, dtype=torch.bool)
    for row, e in enumerate(encoded):
        p, c = len(e.prompt_ids), len(e.completion_ids)
        prompt_ids[row, p_len - p :] = torch.tensor(e.prompt_ids)
        prompt_mask[row, p_len - p :] = 1
        completion_ids[row, :c] = torch.tensor(e.completion_ids)
        completion_mask[row, :c] = 1
        if e.old_logprobs is not None:
            old_logps[row, :c] = torch.tensor(e.old_logprobs)
            has_old[row] = True
            old_is_ref[row] = e.old_is_reference
    return {
        "prompt_ids": prompt_ids,
        "prompt_mask": prompt_mask,
        "completion_ids": completion_ids,
        "completion_mask": completion_mask,
        "old_logps": old_logps,
        "has_old_logps": has_old,
        "old_is_reference": old_is_ref,
    }
