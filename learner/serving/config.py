"""The model server's settings (`maro model serve`'s options), importable without torch."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

PREFIX_CACHE_TOKENS = 16_384
"""The local server's default prompt-prefix cache (`maro model serve --prefix-cache-tokens`):
about 46 KB of KV per token for SmolLM2-135M in fp32, so some 750 MB when full."""


class ServeConfig(BaseModel):
    """Configuration of the local model server."""

    model_config = ConfigDict(extra="forbid")

    model_dir: Path = Field(description="Folder of a transformers causal LM with its tokenizer.")
    served_name: str = Field("smollm2", description="Model name clients send; `@base`/`@vNNNN` select versions.")
    adapters_dir: Path | None = Field(None, description="Folder of PEFT adapter versions (vNNNN/ + LATEST).")
    host: str = Field("127.0.0.1", description="Interface to bind.")
    port: int = Field(8008, ge=0, le=65535, description="TCP port to bind (0 picks a free one).")
    reload_interval_s: float = Field(1.0, gt=0, description="How often LATEST is polled for a new adapter.")
    max_batch_size: int = Field(16, ge=1, description="Most rows (requests x n) in the running batch.")
    batch_wait_ms: float = Field(15, ge=0, description="How long an idle batch waits for companions of a first request.")
    max_queue: int = Field(256, ge=1, description="Most requests waiting to join the batch; beyond it requests get 503.")
    default_max_tokens: int = Field(64, ge=1, description="Completion length when a request names none.")
    max_loaded_adapters: int = Field(4, ge=1, description="Adapter versions kept in memory at once (more while in use).")
    threads: int | None = Field(None, ge=1, description="torch intra-op threads; None leaves torch's choice.")
    dtype: Literal["float32", "bfloat16", "auto"] = Field(
        "float32", description="Weights dtype; `auto` is bfloat16 where the hardware supports it, else float32.")
    prefix_cache_tokens: int = Field(PREFIX_CACHE_TOKENS, ge=0, le=1_000_000, description=(
        "Prompt tokens whose KV is kept so that prompts starting the same way (a game's rules and worked "
        "example, a repair turn) prefill only the rest; 0 turns it off."))
