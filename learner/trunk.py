"""The frozen trunk of a LoRA update: decoder layers below the lowest adapted one never change.

With LoRA on the top N of L decoder layers, the bottom L - N layers (and the embeddings) compute
the same hidden states for every forward of an update: the policy's in every epoch, the old
policy's and the reference's (adapter off). `TrunkCache` runs them once per sample before
training and keeps each sample's hidden states; every later forward runs only the top layers on
them (`top_logits`). The result is the full forward's: the trunk holds no trainable parameter, so
no gradient is lost, and positions count from each sequence's first real token, so a sample's
hidden states do not depend on the padding of the batch it was computed in. The prompt prefix a
micro-batch's rows share goes through the layers once (`TrunkCache`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from maro.learner.samples import EncodedSample, collate


def decoder(model: nn.Module) -> nn.Module | None:
    """The decoder stack (the module holding `layers`, `norm` and the embeddings) of a causal LM,
    PEFT-wrapped or not; None for an architecture without that shape."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    inner = base.get_decoder() if hasattr(base, "get_decoder") else getattr(base, "model", None)
    if inner is None or not isinstance(getattr(inner, "layers", None), nn.ModuleList) or not hasattr(inner, "norm"):
        return None
    return inner


def trunk_depth(model: nn.Module) -> int:
    """Decoder layers, counted from the bottom, with no trainable parameter below the first that has one
    (0 when the embeddings train, or for an unknown architecture)."""
    inner = decoder(model)
    if inner is None or any(p.requires_grad for p in inner.embed_tokens.parameters()):
        return 0
    for depth, layer in enumerate(inner.layers):
        if any(p.requires_grad for p in layer.parameters()):
            return depth
    return len(inner.layers)


@contextmanager
def only_layers(inner: nn.Module, layers: slice, *, final_norm: bool) -> Iterator[None]:
    """Run `inner` with a slice of its decoder layers (and without its final norm unless asked);
    the model's own forward does the rest (masks, rotary positions), and the layers come back after."""
    full, norm = inner.layers, inner.norm
    inner.layers = nn.ModuleList(list(full)[layers])
    if not final_norm:
        inner.norm = nn.Identity()
    try:
        yield
    finally:
        inner.layers, inner.norm = full, norm


def positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids counted from each row's first real token (0 on left padding)."""
    return (attention_mask.long().cumsum(1) - 1).clamp(min=0)


MIN_SHARED_TOKENS = 16
"""A micro-batch whose prompts share fewer leading tokens than this runs as one plain forward."""


@dataclass
class TrunkBatch:
    """A micro-batch's trunk output, ready for the top layers. With a shared prefix, `prefix` holds
    the hidden states of the prompt tokens every row starts with (computed once, for one row) and
    `hidden` each row's positions after it; otherwise `prefix` is None and `hidden` is the whole
    sequence. `hidden` is laid out like collate's batch with the prefix left out (prompts padded on
    the left, completions on the right); `mask` covers prefix and rest."""

    hidden: torch.Tensor
    mask: torch.Tensor
    position_ids: torch.Tensor
    prefix: torch.Tensor | None


class TrunkCache:
    """Per-sample hidden states after the frozen trunk, and micro-batches rebuilt from them.

    Prompts of one game share their opening (system prompt and rules, up to the seat's role and
    private value: in a bargaining update's micro-batches of 8, about 75 of some 320 prompt tokens on
    average, measured). With `share_prefix`, the prompt tokens every row of a micro-batch starts
    with go through the layers once, for one row, and the rows' own tokens attend to their keys and
    values (repeated per row, gradients summed back): the trunk's forward and every forward of the
    top layers, training's included. The same function of the weights, computed in fewer tokens."""

    def __init__(self, model: nn.Module, depth: int, *, share_prefix: bool = False):
        inner = decoder(model)
        if inner is None:
            raise ValueError("this architecture has no decoder stack to split; run the update without the trunk cache")
        self.model, self.inner, self.depth = model, inner, depth
        # Sharing needs each attention layer to find its keys and values in a cache by its index.
        self.share_prefix = share_prefix and all(
            isinstance(getattr(getattr(layer, "self_attn", None), "layer_idx", None), int) for layer in inner.layers)
        self.hidden: dict[int, torch.Tensor] = {}  # sample index -> (prompt + completion, hidden)
        self.shared_tokens = 0  # prefix tokens that went through the trunk once for a whole micro-batch

    def shared(self, batch: dict[str, torch.Tensor]) -> int:
        """How many leading prompt tokens all rows share (0 below MIN_SHARED_TOKENS, or for one row);
        at least the last prompt token of each row stays outside, since its logit scores the first
        completion token."""
        ids, lengths = batch["prompt_ids"], batch["prompt_mask"].sum(1).tolist()
        if not self.share_prefix or len(lengths) < 2:
            return 0
        width = ids.size(1)
        first = ids[0, width - lengths[0]:]
        n = min(lengths) - 1
        for row in range(1, len(lengths)):
            other = ids[row, width - lengths[row]:]
            differ = (first[:n] != other[:n]).nonzero()
            if len(differ):
                n = int(differ[0])
        return n if n >= MIN_SHARED_TOKENS else 0

    @torch.no_grad()
    def fill(self, encoded: Sequence[EncodedSample], batches: Sequence[Sequence[int]], pad_id: int) -> None:
        """Run the trunk once over every sample, batch by batch (indices into `encoded`)."""
        for rows in batches:
            batch = collate([encoded[i] for i in rows], pad_id)
            shared = self.shared(batch)
            self.shared_tokens += shared * (len(rows) - 1)
            p_len = batch["prompt_ids"].size(1)
            prompt_ids = _drop_prefix(batch["prompt_ids"], batch["prompt_mask"], shared, pad_id)
            ids = torch.cat([prompt_ids, batch["completion_ids"]], dim=1)
            mask, pos = _rest_mask(batch, shared)
            first = batch["prompt_ids"][:1, p_len - int(batch["prompt_mask"][0].sum()):][:, :shared] if shared else None
            with only_layers(self.inner, slice(0, self.depth), final_norm=False):
                prefix, result = self._after_prefix(self.inner, first, len(rows), as_embeds=False,
                                                    input_ids=ids, attention_mask=mask, position_ids=pos)
            out = result.last_hidden_state
            for row, i in enumerate(rows):
                e = encoded[i]
                span = slice(p_len - len(e.prompt_ids), p_len - shared + len(e.completion_ids))
                rest = out[row, span]
                self.hidden[i] = torch.cat([prefix[0], rest]) if shared else rest.clone()

    def _after_prefix(self, call: nn.Module, first: torch.Tensor | None, rows: int, *, as_embeds: bool, **inputs):
        """`call(**inputs)` for `rows` rows that all follow `first` (one row's shared prefix, ids or
        hidden states; None: no prefix), with the prefix through the layers once and its keys and
        values a cache for every row. Returns the prefix's hidden states (None without one) and
        the call's output."""
        if first is None:
            return None, call(**inputs, use_cache=False)
        prefix, cache = self._prefix(first, rows, as_embeds=as_embeds)
        with _cache_indices(self.inner):
            return prefix, call(**inputs, cache=cache, use_cache=True)

    def _prefix(self, first: torch.Tensor, rows: int, *, as_embeds: bool):
        """The layers in place over one row's shared prefix: its hidden states and a cache of its keys
        and values repeated for `rows` rows (differentiable: the rows' gradients add up)."""
        from transformers import DynamicCache

        cache = DynamicCache()
        position_ids = torch.arange(first.size(1), device=first.device).unsqueeze(0)
        inputs = {"inputs_embeds": first} if as_embeds else {"input_ids": first}
        with _cache_indices(self.inner):
            prefix = self.inner(**inputs, position_ids=position_ids, cache=cache,
                                use_cache=True).last_hidden_state
        cache.batch_repeat_interleave(rows)
        return prefix, cache

    def batch(self, indices: Sequence[int], batch: dict[str, torch.Tensor]) -> TrunkBatch:
        """The trunk's hidden states for `batch` (collate's layout; rows in any order), the prefix
        its rows share apart."""
        shared = self.shared(batch)
        p_len = batch["prompt_ids"].size(1)
        seq = p_len - shared + batch["completion_ids"].size(1)
        first = self.hidden[indices[0]]
        out = first.new_zeros((len(indices), seq, first.size(-1)))
        for row, i in enumerate(indices):
            start = p_len - int(batch["prompt_mask"][row].sum())
            h = self.hidden[i][shared:]
            out[row, start:start + h.size(0)] = h
        mask, pos = _rest_mask(batch, shared)
        return TrunkBatch(out, mask, pos, first[:shared].unsqueeze(0) if shared else None)

    def top_logits(self, model: nn.Module, trunk: TrunkBatch, logits_to_keep: int) -> torch.Tensor:
        """The model's logits for the last `logits_to_keep` positions, from the trunk's hidden states:
        `model` is the (PEFT) model itself, so an adapter switched off stays off, and gradients reach
        the adapter through the shared prefix too."""
        with only_layers(self.inner, slice(self.depth, None), final_norm=True):
            _, out = self._after_prefix(model, trunk.prefix, trunk.hidden.size(0), as_embeds=True,
                                        inputs_embeds=trunk.hidden, attention_mask=trunk.mask,
                                        position_ids=trunk.position_ids, logits_to_keep=logits_to_keep)
        return out.logits


def _drop_prefix(ids: torch.Tensor, mask: torch.Tensor, shared: int, pad_id: int) -> torch.Tensor:
    """Left-padded prompts without their first `shared` real tokens, still left-padded."""
    if not shared:
        return ids
    out = ids.new_full((ids.size(0), ids.size(1) - shared), pad_id)
    for row, n in enumerate(mask.sum(1).tolist()):
        out[row, out.size(1) - (n - shared):] = ids[row, ids.size(1) - n + shared:]
    return out


def _rest_mask(batch: dict[str, torch.Tensor], shared: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The attention mask of the shared prefix and the positions after it, and the position ids of
    the latter (counted from each row's first real token, the prefix included)."""
    p_len = batch["prompt_ids"].size(1)
    # A row's prompt mask is zeros then ones: dropping `shared` of its ones keeps its first p_len - shared.
    rest = torch.cat([batch["prompt_mask"][:, :p_len - shared], batch["completion_mask"]], dim=1)
    return torch.cat([rest.new_ones((rest.size(0), shared)), rest], dim=1), positions(rest) + shared


@contextmanager
def _cache_indices(inner: nn.Module) -> Iterator[None]:
    """Number the attention layers of `inner` (a slice, under only_layers) from 0 while a cache is
    used, so that a cache of the slice starts at its first layer; their own indices come back after."""
    attns = [layer.self_attn for layer in inner.layers]
    kept = [a.layer_idx for a in attns]
    for k, a in enumerate(attns):
        a.layer_idx = k
    try:
        yield
    finally:
        for a, k in zip(attns, kept, strict=True):
            a.layer_idx = k


class FixedBatchSampler(torch.utils.data.Sampler[int]):
    """Every sample once per epoch, in micro-batches fixed for the whole update (samples of similar
    length together, like transformers' group_by_length), the batches' order shuffled each epoch.

    bf16 kernels round differently for different padded layouts (up to 0.1 nats a token here), so
    log-probs computed once before training (the reference, the old policy) are exactly what the
    training forward computes only if each sample keeps its batch. Full batches come in a shuffled
    order; the one short batch comes last, so the data loader's batches are exactly these.
    """

    def __init__(self, lengths: list[int], batch_size: int, seed: int):
        self.size, self.generator = batch_size, torch.Generator().manual_seed(seed)
        order = sorted(torch.randperm(len(lengths), generator=self.generator).tolist(), key=lambda i: lengths[i])
        self.batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]

    def __iter__(self):
        full = [b for b in self.batches if len(b) == self.size]
        for k in torch.randperm(len(full), generator=self.generator).tolist():
            yield from full[k]
        for b in self.batches:
            if len(b) < self.size:
                yield from b

    def __len__(self) -> int:
        return sum(len(b) for b in self.batches)
