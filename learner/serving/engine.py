"""The served model: tokenizer, weights, one forward over rows of mixed adapters, and hot-loaded PEFT adapters."""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from maro.learner.adapters import is_version, read_latest, version_names
from maro.learner.models import eos_ids, load_causal_lm, load_tokenizer, resolve_dtype

BASE_ADAPTER = "__base__"  # PEFT's name for "no adapter" in a mixed-adapter batch


@dataclass(frozen=True)
class RowRequest:
    """One sequence to generate: a tokenized prompt and its own sampling settings."""

    prompt_ids: list[int]
    temperature: float  # 0 means greedy
    top_p: float
    max_tokens: int
    stop: list[str] = field(default_factory=list)
    top_logprobs: int = 0
    ignore_eos: bool = False  # keep going past EOS until max_tokens (benchmarks, as vLLM's flag)
    include_stop: bool = False  # the text ends with the stop string it stopped at (vLLM's include_stop_str_in_output)


@dataclass
class RowOutput:
    """One generated completion.

    `token_ids` are the sampled tokens, ending with the EOS token or with the token that completed
    a stop string when either occurred; `logprob_entries` align one to one with them. `text` is
    the decoded completion without special tokens, cut before the first stop string (after it,
    with `include_stop`), so `decode(token_ids)` starts with `text` and may run on past it by
    the stop string (or by what the stop string's last token also holds).
    """

    text: str
    token_ids: list[int]
    finish_reason: str  # "stop" | "length" | "cancelled"
    logprob_entries: list[dict]


def row_generator(seed: int | None, index: int) -> torch.Generator:
    """A row's own sampling generator: seeded rows repeat whatever rows share their batch."""
    value = secrets.randbits(63) if seed is None else (seed * 1_000_003 + index) % (2**63)
    return torch.Generator().manual_seed(value)


class GenerationEngine:
    """The model and tokenizer; `forward` runs one step for rows that may use different adapters."""

    def __init__(self, model_dir: Path, *, dtype: str = "float32"):
        self.tokenizer = load_tokenizer(model_dir, padding_side="left")
        self.dtype = resolve_dtype(dtype)
        self.base = load_causal_lm(model_dir, dtype=self.dtype).eval()
        self.model = self.base  # becomes a PeftModel once an adapter loads
        self.eos_ids = eos_ids(self.base, self.tokenizer)
        self.max_positions = int(getattr(self.base.config, "max_position_embeddings", 2048))
        self._pieces: dict[int, str] = {}

    def encode_chat(self, messages: list[dict]) -> list[int]:
        """Token ids of the chat template with the assistant generation prompt appended."""
        enc = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
        return list(enc["input_ids"])

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def piece(self, token_id: int) -> str:
        """One token's text (cached: the same few thousand tokens recur in every log-prob entry)."""
        text = self._pieces.get(token_id)
        if text is None:
            text = self._pieces[token_id] = self.tokenizer.decode([token_id])
        return text

    def entry(self, token_id: int, logprob: float, tops: list[tuple[int, float]] | None) -> dict:
        """One OpenAI `logprobs.content` item."""
        piece = self.piece(token_id)
        entry = {"token": piece, "logprob": logprob, "bytes": list(piece.encode("utf-8")), "top_logprobs": []}
        for tid, value in tops or ():
            p = self.piece(tid)
            entry["top_logprobs"].append({"token": p, "logprob": value, "bytes": list(p.encode("utf-8"))})
        return entry

    @torch.inference_mode()
    def forward(self, input_ids, attention_mask, position_ids, cache, adapters: list[str | None], *, last_only=True):
        """Logits of each row's last position [batch, vocab]; `cache` (a DynamicCache) grows in place.

        Rows name their adapter (None is the base model); PEFT's mixed-batch forward applies each
        row's own LoRA weights, so rows of different versions share the base model's matmuls.
        """
        kwargs = {}
        if hasattr(self.model, "peft_config"):
            kwargs["adapter_names"] = [a or BASE_ADAPTER for a in adapters]
        out = self.model(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
            cache=cache, use_cache=True, logits_to_keep=1 if last_only else 0, **kwargs,
        )
        return out.logits[:, -1]


class AdapterStore:
    """Adapter versions on disk (`vNNNN/` + `LATEST`) and the few of them loaded into the model.

    Every method touches the model, so callers run them on the model thread only. `in_use`
    names versions that rows in flight still need: they are never evicted.
    """

    def __init__(self, engine: GenerationEngine, adapters_dir: Path | None, *, max_loaded: int = 4,
                 in_use: Callable[[], set[str]] | None = None):
        self.engine, self.dir, self.max_loaded = engine, adapters_dir, max_loaded
        self.in_use = in_use or set
        self.current: str | None = None
        self._loaded: OrderedDict[str, None] = OrderedDict()

    def versions(self) -> list[str]:
        return version_names(self.dir, with_weights=True)

    def exists(self, version: str) -> bool:
        return is_version(version) and version in self.versions()

    def loaded(self) -> list[str]:
        return list(self._loaded)

    def refresh(self) -> bool:
        """Load the version LATEST names if it changed; True when the current version moved."""
        version = read_latest(self.dir)
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
        busy = self.in_use()
        for old in list(self._loaded):
            if len(self._loaded) <= self.max_loaded:
                break
            if old not in (keep, self.current) and old not in busy:
                self.engine.model.set_adapter(keep)  # PEFT refuses to delete the active adapter
                self.engine.model.delete_adapter(old)
                del self._loaded[old]
