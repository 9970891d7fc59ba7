"""Prompt-prefix reuse: the KV cache of recent prompts, per adapter, so a new prompt that starts
like one of them (the same game rules and worked example, a repair turn that repeats the whole
prompt) prefills only the tokens after the shared part."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch

from maro.learner.serving.config import PREFIX_CACHE_TOKENS


@dataclass(eq=False)
class Prefix:
    """A cached prompt: its tokens and, per layer, keys and values [kv_heads, tokens, head_dim]."""

    adapter: str | None
    ids: torch.Tensor  # [tokens] long
    keys: list[torch.Tensor]
    values: list[torch.Tensor]

    @property
    def tokens(self) -> int:
        return int(self.ids.shape[0])


class PrefixCache:
    """Recent prompts' KV, least recently used out first, at most `max_tokens` tokens in all.

    `match` finds, among the cached prompts of the same adapter, the longest common prefix with a
    new prompt (at least `min_tokens`, and always leaving one token to prefill, whose logits the
    first sample needs). KV depends only on the tokens before it and the weights, so reusing it
    gives the same attention inputs as a full prefill, up to float rounding of batch shapes."""

    def __init__(self, max_tokens: int = PREFIX_CACHE_TOKENS, min_tokens: int = 32):
        self.max_tokens, self.min_tokens = max_tokens, min_tokens
        self._entries: OrderedDict[int, Prefix] = OrderedDict()
        self._tokens = 0
        self.hits = self.reused_tokens = 0

    def __len__(self) -> int:
        return len(self._entries)

    def match(self, adapter: str | None, prompt: list[int]) -> tuple[Prefix | None, int]:
        """The cached prompt sharing the longest prefix with `prompt`, and how many tokens it shares."""
        if not self._entries or len(prompt) <= self.min_tokens:
            return None, 0
        wanted = torch.tensor(prompt, dtype=torch.long)
        best, best_n = None, 0
        for key, entry in self._entries.items():
            if entry.adapter != adapter:
                continue
            n = min(entry.tokens, len(prompt) - 1)
            if n <= best_n:
                continue
            same = entry.ids[:n] == wanted[:n]
            shared = n if bool(same.all()) else int((~same).nonzero()[0])
            if shared > best_n:
                best, best_n, best_key = entry, shared, key
        if best is None or best_n < self.min_tokens:
            return None, 0
        self._entries.move_to_end(best_key)
        self.hits += 1
        self.reused_tokens += best_n
        return best, best_n

    def put(self, adapter: str | None, prompt: list[int], keys: list[torch.Tensor], values: list[torch.Tensor]) -> None:
        """Keep a prompt's KV (per layer [kv_heads, tokens, head_dim], copied by the caller)."""
        if len(prompt) < self.min_tokens or len(prompt) > self.max_tokens:
            return
        entry = Prefix(adapter, torch.tensor(prompt, dtype=torch.long), keys, values)
        key = hash((adapter, tuple(prompt)))
        old = self._entries.pop(key, None)
        if old is not None:
            self._tokens -= old.tokens
        self._entries[key] = entry
        self._tokens += entry.tokens
        while self._tokens > self.max_tokens:
            _, dropped = self._entries.popitem(last=False)
            self._tokens -= dropped.tokens

    def clear(self) -> None:
        self._entries.clear()
        self._tokens = 0
