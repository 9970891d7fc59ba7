"""Continuous batching: one running batch that owns the KV cache; rows join after a prefill and leave when done."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from transformers import DynamicCache

from maro.learner.serving.engine import GenerationEngine, RowOutput, RowRequest, row_generator
from maro.learner.serving.prefix import PrefixCache


@dataclass(eq=False)
class Row:
    """One sequence in flight: its request, adapter, sampling generator and what it generated so far.

    The KV cache holds `length` tokens of this row (prompt and generated); the last sampled token
    (`tokens[-1]`) is not in it yet: the next decode step feeds it.
    """

    request: RowRequest
    adapter: str | None
    generator: torch.Generator
    on_token: Callable[[Row], None] | None = None  # called on the model thread after each sampled token
    tokens: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    tops: list[list[tuple[int, float]]] = field(default_factory=list)
    length: int = 0
    finish_reason: str | None = None
    output: RowOutput | None = None
    cancelled: bool = False  # set from any thread; the model thread drops the row before its next step


def sample(logits: torch.Tensor, rows: list[Row]) -> tuple[list[int], list[float], list | None]:
    """Pick each row's next token with its own temperature, top-p and generator.

    logits: [batch, vocab] raw. Log-probs are log_softmax(logits / T) of the chosen token (T = 1 for
    greedy rows), i.e. the tempered policy before top-p truncation, the quantity the learner
    recomputes. Returns tokens [batch], log-probs [batch] and, if any row wants them, top-k
    (token, log-prob) lists [batch][k].
    """
    temps = torch.tensor([r.request.temperature if r.request.temperature > 0 else 1.0 for r in rows])
    logp = torch.log_softmax(logits.float() / temps[:, None], dim=-1)
    top_ps = torch.tensor([r.request.top_p for r in rows])
    probs = logp.exp()
    if bool((top_ps < 1).any()):
        ordered, order = probs.sort(dim=-1, descending=True)
        # Drop a token once the mass strictly before it already reaches top_p; the top one stays.
        drop = (ordered.cumsum(dim=-1) - ordered) >= top_ps[:, None]
        probs = probs.scatter(1, order, ordered.masked_fill(drop, 0.0))
    greedy = logits.argmax(dim=-1).tolist()
    tokens = [
        greedy[i] if r.request.temperature <= 0 else int(torch.multinomial(probs[i], 1, generator=r.generator))
        for i, r in enumerate(rows)
    ]
    chosen = logp.gather(1, torch.tensor(tokens)[:, None]).squeeze(1).tolist()
    k = max(r.request.top_logprobs for r in rows)
    tops = None
    if k:
        values, ids = logp.topk(k, dim=-1)
        tops = [list(zip(ids[i].tolist(), values[i].tolist())) for i in range(len(rows))]
    return tokens, chosen, tops


class DecodeBatch:
    """The running batch: rows left-padded to one KV-cache width, stepped one token at a time.

    Layout: cache tensors [rows, kv_heads, width, head_dim] and `mask` [rows, width], with each
    row's real tokens right-aligned (left padding). Positions are per row (`Row.length`), so
    padding never shifts a row's rotary positions, and leading all-padding columns can be cut.
    """

    def __init__(self, engine: GenerationEngine, prefixes: PrefixCache | None = None):
        self.engine = engine
        self.prefixes = prefixes
        """Recent prompts' KV: a prompt that starts like one of them prefills only the rest."""
        self.rows: list[Row] = []
        self.cache: DynamicCache | None = None
        self.mask: torch.Tensor | None = None

    @property
    def width(self) -> int:
        return 0 if self.mask is None else self.mask.shape[1]

    def admit(self, rows: list[Row]) -> list[Row]:
        """Prefill `rows` together, sample their first tokens and merge them in; returns those already done.

        With a prefix cache, each row's longest cached prompt prefix (same adapter) is copied into
        the new cache instead of recomputed: row i's columns are then [padding, its cached prefix
        (right-aligned in the first P columns), padding, its new tokens (right-aligned)], the mask
        marks the real ones and positions continue from the prefix, so attention sees exactly the
        prompt."""
        found = [self.prefixes.match(r.adapter, r.request.prompt_ids) if self.prefixes else (None, 0) for r in rows]
        reused = max(n for _, n in found)
        news = [r.request.prompt_ids[n:] for r, (_, n) in zip(rows, found)]
        width = max(len(x) for x in news)
        pad = self.engine.tokenizer.pad_token_id
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        positions = torch.zeros((len(rows), width), dtype=torch.long)
        for i, (r, new, (_, n)) in enumerate(zip(rows, news, found)):
            ids[i, width - len(new) :] = torch.tensor(new)
            mask[i, width - len(new) :] = 1
            positions[i, width - len(new) :] = torch.arange(n, n + len(new))
            r.length = len(r.request.prompt_ids)
        cache = DynamicCache(config=self.engine.base.config)
        if reused:
            mask = torch.cat([self._copy_prefixes(cache, found, reused), mask], dim=1)
        logits = self.engine.forward(ids, mask, positions, cache, [r.adapter for r in rows])
        if self.prefixes is not None:
            self._remember(rows, found, reused, cache, width)
        self._merge(rows, cache, mask)
        return self._advance(rows, logits)

    def _copy_prefixes(self, cache: DynamicCache, found: list, reused: int) -> torch.Tensor:
        """Fill `cache` with each row's cached prefix, right-aligned in `reused` columns; returns their mask."""
        template = next(entry for entry, n in found if n)
        rows, mask = len(found), torch.zeros((len(found), reused), dtype=torch.long)
        for i, (_, n) in enumerate(found):
            mask[i, reused - n :] = 1
        for layer in range(len(template.keys)):
            heads, _, dim = template.keys[layer].shape
            keys = torch.zeros((rows, heads, reused, dim), dtype=template.keys[layer].dtype)
            values = torch.zeros_like(keys)
            for i, (entry, n) in enumerate(found):
                if n:
                    keys[i, :, reused - n :] = entry.keys[layer][:, :n]
                    values[i, :, reused - n :] = entry.values[layer][:, :n]
            cache.update(keys, values, layer)
        return mask

    def _remember(self, rows: list[Row], found: list, reused: int, cache: DynamicCache, width: int) -> None:
        """Keep every admitted prompt's KV (its cached part and its new part) for later prompts."""
        total = reused + width
        for i, (r, (_, n)) in enumerate(zip(rows, found)):
            new = len(r.request.prompt_ids) - n
            spans = [(reused - n, reused), (total - new, total)]
            keys = [torch.cat([layer.keys[i, :, a:b] for a, b in spans], dim=1).clone() for layer in cache.layers]
            values = [torch.cat([layer.values[i, :, a:b] for a, b in spans], dim=1).clone() for layer in cache.layers]
            self.prefixes.put(r.adapter, r.request.prompt_ids, keys, values)

    def step(self) -> list[Row]:
        """One decode step for every row; returns the rows that finished (already removed)."""
        rows = self.rows
        ids = torch.tensor([[r.tokens[-1]] for r in rows], dtype=torch.long)
        self.mask = torch.cat([self.mask, torch.ones((len(rows), 1), dtype=torch.long)], dim=1)
        positions = torch.tensor([[r.length] for r in rows], dtype=torch.long)
        logits = self.engine.forward(ids, self.mask, positions, self.cache, [r.adapter for r in rows])
        for r in rows:
            r.length += 1
        return self._advance(rows, logits)

    def drop_cancelled(self) -> list[Row]:
        """Remove rows whose client went away; they finish as "cancelled"."""
        gone = [r for r in self.rows if r.cancelled]
        for r in gone:
            self._finish(r, "cancelled")
        self._keep([r for r in self.rows if not r.cancelled])
        return gone

    def fail_all(self) -> list[Row]:
        rows, self.rows, self.cache, self.mask = self.rows, [], None, None
        return rows

    def _advance(self, rows: list[Row], logits: torch.Tensor) -> list[Row]:
        tokens, chosen, tops = sample(logits, rows)
        done = []
        for i, r in enumerate(rows):
            r.tokens.append(tokens[i])
            r.logprobs.append(chosen[i])
            if tops is not None and r.request.top_logprobs:
                r.tops.append(tops[i][: r.request.top_logprobs])
            reason = self._finish_reason(r)
            if reason:
                self._finish(r, reason)
                done.append(r)
            if r.on_token is not None:
                r.on_token(r)
        if done:
            self._keep([r for r in self.rows if r.finish_reason is None])
        return done

    def _finish_reason(self, r: Row) -> str | None:
        req = r.request
        if r.tokens[-1] in self.engine.eos_ids and not req.ignore_eos:
            return "stop"
        if req.stop:
            # Each token decodes to at least one character, so this many tail tokens hold any stop.
            window = max(len(s) for s in req.stop) + 2
            tail = self.engine.tokenizer.decode(r.tokens[-window:])
            if any(s in tail for s in req.stop):
                return "stop"
        if len(r.tokens) >= req.max_tokens:
            return "length"
        return None

    def _finish(self, r: Row, reason: str) -> None:
        text = self.engine.decode(r.tokens)
        hits = [(text.find(s), len(s)) for s in r.request.stop if s in text]
        if hits:
            at, length = min(hits)
            text, reason = text[: at + length if r.request.include_stop else at], "stop"
        entries = [
            self.engine.entry(t, lp, r.tops[j] if r.tops else None) for j, (t, lp) in enumerate(zip(r.tokens, r.logprobs))
        ]
        r.finish_reason = reason
        r.output = RowOutput(text=text, token_ids=list(r.tokens), finish_reason=reason, logprob_entries=entries)

    def _merge(self, rows: list[Row], cache: DynamicCache, mask: torch.Tensor) -> None:
        """Append prefilled rows; the narrower side gets left padding so real tokens stay right-aligned."""
        if not self.rows:
            self.rows, self.cache, self.mask = list(rows), cache, mask
            return
        width = max(self.width, mask.shape[1])
        grow_old, grow_new = width - self.width, width - mask.shape[1]
        for old, new in zip(self.cache.layers, cache.layers):
            old.keys = torch.cat([F.pad(old.keys, (0, 0, grow_old, 0)), F.pad(new.keys, (0, 0, grow_new, 0))])
            old.values = torch.cat([F.pad(old.values, (0, 0, grow_old, 0)), F.pad(new.values, (0, 0, grow_new, 0))])
        self.mask = torch.cat([F.pad(self.mask, (grow_old, 0)), F.pad(mask, (grow_new, 0))])
        self.rows = self.rows + list(rows)

    def _keep(self, keep: list[Row]) -> None:
        """Keep only `keep` (in order) and cut leading columns that are padding for every remaining row."""
        if not keep:
            self.rows, self.cache, self.mask = [], None, None
            return
        if len(keep) == len(self.rows):
            return
        index = torch.tensor([self.rows.index(r) for r in keep])
        mask = self.mask[index]
        start = int(mask.any(dim=0).nonzero()[0])
        for layer in self.cache.layers:
            layer.keys = layer.keys[index, :, start:].contiguous()
            layer.values = layer.values[index, :, start:].contiguous()
        self.rows, self.mask = keep, mask[:, start:].contiguous()


def generate(engine: GenerationEngine, rows: list[RowRequest], adapter: str | None = None,
             seed: int | None = None) -> list[RowOutput]:
    """Generate all rows together, synchronously (tests and scripts; the server uses the scheduler)."""
    batch = DecodeBatch(engine)
    live = [Row(r, adapter, row_generator(seed, i)) for i, r in enumerate(rows)]
    batch.admit(live)
    while batch.rows:
        batch.step()
    return [row.output for row in live]
