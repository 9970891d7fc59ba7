"""Batched generation with per-row sampling, stop strings and logprobs, plus hot-loaded PEFT adapters."""

from __future__ import annotations

import contextlib
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
    StoppingCriteria,
    StoppingCriteriaList,
)

_VERSION = re.compile(r"^v\d+$")


@dataclass(frozen=True)
class RowRequest:
    """One sequence to generate: a tokenized prompt and its own sampling settings."""

    prompt_ids: list[int]
    temperature: float  # 0 means greedy
    top_p: float
    max_tokens: int
    stop: list[str] = field(default_factory=list)
    top_logprobs: int = 0


@dataclass
class RowOutput:
    """One generated completion.

    `token_ids` are the sampled tokens, ending with the EOS token or with the token that completed
    a stop string when either occurred; `logprob_entries` align one to one with them. `text` is
    the decoded completion without special tokens, cut before the first stop string, so
    `decode(token_ids)` starts with `text` and may run on past it by the stop string.
    """

    text: str
    token_ids: list[int]
    finish_reason: str  # "stop" | "length"
    logprob_entries: list[dict]


class _RowSampling(LogitsProcessor):
    """Per-row temperature and top-p, and greedy rows, inside one sampling generate call."""

    def __init__(self, temperatures: torch.Tensor, top_ps: torch.Tensor):
        self.greedy = temperatures <= 0
        self.temperatures = torch.where(self.greedy, torch.ones_like(temperatures), temperatures)
        self.top_ps = top_ps

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        scores = scores.float() / self.temperatures[:, None].to(scores.device)
        if bool((self.top_ps < 1).any()):
            ordered, order = scores.sort(dim=-1, descending=True)
            probs = ordered.softmax(dim=-1)
            # Drop a token once the mass strictly before it already reaches top_p; the top one stays.
            drop = (probs.cumsum(dim=-1) - probs) >= self.top_ps[:, None].to(scores.device)
            scores = scores.scatter(1, order, ordered.masked_fill(drop, float("-inf")))
        if bool(self.greedy.any()):
            only_best = torch.full_like(scores, float("-inf"))
            only_best.scatter_(1, scores.argmax(dim=-1, keepdim=True), 0.0)
            scores = torch.where(self.greedy[:, None].to(scores.device), scores + only_best, scores)
        return scores


class _RowStopper(StoppingCriteria):
    """Ends each row at its own max_tokens or stop strings; the batch runs to the longest row."""

    def __init__(self, tokenizer, prompt_len: int, rows: list[RowRequest]):
        self.tokenizer, self.prompt_len, self.rows = tokenizer, prompt_len, rows
        # Each token decodes to at least one character, so this many tail tokens hold any stop.
        self.window = max((len(s) for r in rows for s in r.stop), default=0) + 2

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        generated = input_ids[:, self.prompt_len :]
        done = []
        for i, row in enumerate(self.rows):
            finished = generated.shape[1] >= row.max_tokens
            if not finished and row.stop:
                tail = self.tokenizer.decode(generated[i, -self.window :].tolist())
                finished = any(s in tail for s in row.stop)
            done.append(finished)
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


class GenerationEngine:
    """The model and tokenizer, and one batched `generate` over rows with different settings."""

    def __init__(self, model_dir: Path, *, dtype: str = "float32"):
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, dtype)).eval()
        self.model = self.base  # becomes a PeftModel once an adapter loads
        eos = self.base.generation_config.eos_token_id
        eos = eos if isinstance(eos, list) else [eos] if eos is not None else []
        self.eos_ids = sorted({*eos, self.tokenizer.eos_token_id} - {None})
        self.max_positions = int(getattr(self.base.config, "max_position_embeddings", 2048))

    def encode_chat(self, messages: list[dict]) -> list[int]:
        """Token ids of the chat template with the assistant generation prompt appended."""
        enc = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
        return list(enc["input_ids"])

    def _adapter_context(self, adapter: str | None):
        if adapter is not None:
            self.model.set_adapter(adapter)
            return contextlib.nullcontext()
        if hasattr(self.model, "disable_adapter"):
            return self.model.disable_adapter()
        return contextlib.nullcontext()

    def generate(self, rows: list[RowRequest], adapter: str | None = None, seed: int | None = None) -> list[RowOutput]:
        """Generate all rows in one call; `seed` reseeds torch's global generator first."""
        pad = self.tokenizer.pad_token_id
        width = max(len(r.prompt_ids) for r in rows)
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):  # left padding: every row's next token sits in the last column
            input_ids[i, width - len(r.prompt_ids) :] = torch.tensor(r.prompt_ids)
            attention[i, width - len(r.prompt_ids) :] = 1
        temps = torch.tensor([r.temperature for r in rows], dtype=torch.float32)
        top_ps = torch.tensor([r.top_p for r in rows], dtype=torch.float32)
        # Sampling warpers are ours (per row), so generate's own are neutralised.
        config = GenerationConfig(
            do_sample=True, temperature=1.0, top_p=1.0, top_k=0,
            max_new_tokens=max(r.max_tokens for r in rows),
            pad_token_id=pad, eos_token_id=self.eos_ids,
            output_logits=True, return_dict_in_generate=True,
        )
        if seed is not None:
            torch.manual_seed(seed)
        with torch.inference_mode(), self._adapter_context(adapter):
            out = self.model.generate(
                input_ids=input_ids, attention_mask=attention, generation_config=config,
                logits_processor=LogitsProcessorList([_RowSampling(temps, top_ps)]),
                stopping_criteria=StoppingCriteriaList([_RowStopper(self.tokenizer, width, rows)]),
            )
        sequences = out.sequences[:, width:]
        chosen, tops = self._logprobs(out.logits, sequences, temps, max(r.top_logprobs for r in rows))
        return [self._finish(r, sequences[i].tolist(), chosen[i], tops, i) for i, r in enumerate(rows)]

    def _logprobs(self, logits, sequences, temps, top_k: int):
        """Log-probabilities of the sampled tokens under log_softmax(raw logits / T), T=1 if greedy.

        logits: tuple of steps of [batch, vocab]; returns chosen [batch, steps] and, if top_k,
        (values, indices) each [batch, steps, top_k].
        """
        t = torch.where(temps <= 0, torch.ones_like(temps), temps)[:, None]
        chosen, top_vals, top_idx = [], [], []
        for step, step_logits in enumerate(logits):
            lp = torch.log_softmax(step_logits.float() / t, dim=-1)
            chosen.append(lp.gather(1, sequences[:, step : step + 1]).squeeze(1))
            if top_k:
                v, ix = lp.topk(top_k, dim=-1)
                top_vals.append(v)
                top_idx.append(ix)
        chosen_t = torch.stack(chosen, dim=1).tolist()
        tops = (torch.stack(top_vals, 1).tolist(), torch.stack(top_idx, 1).tolist()) if top_k else None
        return chosen_t, tops

    def _finish(self, row: RowRequest, ids: list[int], chosen: list[float], tops, i: int) -> RowOutput:
        ids = ids[: row.max_tokens]
        end = next((j + 1 for j, t in enumerate(ids) if t in self.eos_ids), None)
        kept = ids[: end or len(ids)]
        finish = "stop" if end else "length"
        decode = lambda toks: self.tokenizer.decode(toks, skip_special_tokens=True)  # noqa: E731
        text = decode(kept)
        hits = [text.find(s) for s in row.stop if s in text]
        if hits:
            # Keep tokens through the one that completed the stop string: they are what was sampled.
            cut = next(k for k in range(1, len(kept) + 1) if any(s in decode(kept[:k]) for s in row.stop))
            kept, text, finish = kept[:cut], text[: min(hits)], "stop"
        entries = []
        for j, tok_id in enumerate(kept):
            piece = self.tokenizer.decode([tok_id])
            entry = {"token": piece, "logprob": chosen[j], "bytes": list(piece.encode("utf-8")), "top_logprobs": []}
            if tops is not None and row.top_logprobs:
                vals, idx = tops[0][i][j][: row.top_logprobs], tops[1][i][j][: row.top_logprobs]
                for v, t in zip(vals, idx):
                    p = self.tokenizer.decode([t])
                    entry["top_logprobs"].append({"token": p, "logprob": v, "bytes": list(p.encode("utf-8"))})
            entries.append(entry)
        return RowOutput(text=text, token_ids=kept, finish_reason=finish, logprob_entries=entries)


class AdapterStore:
    """Adapter versions on disk (`vNNNN/` + `LATEST`) and the few of them loaded into the model.

    Every method touches the model, so callers run them on the generation thread only.
    """

    def __init__(self, engine: GenerationEngine, adapters_dir: Path | None, *, max_loaded: int = 4):
        self.engine, self.dir, self.max_loaded = engine, adapters_dir, max_loaded
        self.current: str | None = None
        self._loaded: OrderedDict[str, None] = OrderedDict()

    def versions(self) -> list[str]:
        if self.dir is None or not self.dir.is_dir():
            return []
        return sorted(p.name for p in self.dir.iterdir() if _VERSION.match(p.name) and (p / "adapter_config.json").exists())

    def exists(self, version: str) -> bool:
        return bool(_VERSION.match(version)) and version in self.versions()

    def loaded(self) -> list[str]:
        return list(self._loaded)

    def refresh(self) -> bool:
        """Load the version LATEST names if it changed; True when the current version moved."""
        latest = self.dir / "LATEST" if self.dir else None
        if latest is None or not latest.exists():
            return False
        version = latest.read_text().strip()
        if not version or version == self.current:
            return False
        self.ensure(version)
        self.current = version
        self._evict(keep=version)
        return True

    def ensure(self, version: str | None) -> None:
        """Make `version` loaded (None is the base model), evicting the least recently used."""
        if version is None:
            return
        if version in self._loaded:
            self._loaded.move_to_end(version)
            return
        from peft import PeftModel

        path = self.dir / version
        if isinstance(self.engine.model, PeftModel):
            self.engine.model.load_adapter(str(path), adapter_name=version)
        else:
            self.engine.model = PeftModel.from_pretrained(self.engine.base, str(path), adapter_name=version)
        self.engine.model.eval()
        self._loaded[version] = None
        self._evict(keep=version)

    def _evict(self, keep: str) -> None:
        for old in list(self._loaded):
            if len(self._loaded) <= self.max_loaded:
                break
            if old not in (keep, self.current):
                self.engine.model.set_adapter(keep)  # PEFT refuses to delete the active adapter
                self.engine.model.delete_adapter(old)
                del self._loaded[old]
