"""The frozen trunk of a LoRA update: decoder layers below the lowest adapted one never change.

With LoRA on the top N of L decoder layers, the bottom L - N layers (and the embeddings) compute
the same hidden states for every forward of an update: the policy's in every epoch, the old
policy's and the reference's (adapter off). `TrunkCache` runs them once per sample before
training and keeps each sample's hidden states; every later forward runs only the top layers on
them (`top_logits`). The result is the full forward's: the trunk holds no trainable parameter, so
no gradient is lost, and positions count from each sequence's first real token, so a sample's
hidden states do not depend on the padding of the batch it was computed in.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

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


class TrunkCache:
    """Per-sample hidden states after the frozen trunk, and whole batches rebuilt from them."""

    def __init__(self, model: nn.Module, depth: int):
        inner = decoder(model)
        if inner is None:
            raise ValueError("this architecture has no decoder stack to split; run the update without the trunk cache")
        self.model, self.inner, self.depth = model, inner, depth
        self.hidden: dict[int, torch.Tensor] = {}  # sample index -> (prompt + completion, hidden)

    @torch.no_grad()
    def fill(self, encoded: Sequence[EncodedSample], batches: Sequence[Sequence[int]], pad_id: int) -> None:
        """Run the trunk once over every sample, batch by batch (indices into `encoded`)."""

        for rows in batches:
            batch = collate([encoded[i] for i in rows], pad_id)
            ids, mask = _sequence(batch)
            with only_layers(self.inner, slice(0, self.depth), final_norm=False):
                out = self.inner(input_ids=ids, attention_mask=mask, position_ids=positions(mask), use_cache=False)
            p_len = batch["prompt_ids"].size(1)
            for row, i in enumerate(rows):
                e = encoded[i]
                span = slice(p_len - len(e.prompt_ids), p_len + len(e.completion_ids))
                self.hidden[i] = out.last_hidden_state[row, span].clone()

    def batch(self, indices: Sequence[int], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The trunk's hidden states laid out like `batch` (collate's padding), zeros on padding."""
        p_len = batch["prompt_ids"].size(1)
        seq = p_len + batch["completion_ids"].size(1)
        first = self.hidden[indices[0]]
        out = first.new_zeros((len(indices), seq, first.size(-1)))
        for row, i in enumerate(indices):
            prompt = int(batch["prompt_mask"][row].sum())
            h = self.hidden[i]
            out[row, p_len - prompt:p_len - prompt + h.size(0)] = h
        return out

    def top_logits(self, model: nn.Module, hidden: torch.Tensor, attention_mask: torch.Tensor,
                   logits_to_keep: int) -> torch.Tensor:
        """The model's logits for the last `logits_to_keep` positions, from the trunk's hidden states:
        `model` is the (PEFT) model itself, so an adapter switched off stays off."""
        with only_layers(self.inner, slice(self.depth, None), final_norm=True):
            return model(inputs_embeds=hidden, attention_mask=attention_mask, position_ids=positions(attention_mask),
                         logits_to_keep=logits_to_keep, use_cache=False).logits


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


def _sequence(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
    mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
    return ids, mask
