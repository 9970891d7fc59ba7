"""Loading the causal LM and its tokenizer, the same way for the trainer, the branch sampler and
the model server: the dtype by name, the pad token, the padding side, adapters on top."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def resolve_dtype(name: str):
    """A dtype name as a torch dtype; "auto" is bfloat16 where the hardware runs it natively (CUDA or
    AVX512-BF16/AMX CPUs: about twice as fast as float32 there), else float32."""
    import torch

    if name != "auto":
        return getattr(torch, name)
    if torch.cuda.is_available():
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    try:
        return torch.bfloat16 if torch.ops.mkldnn._is_mkldnn_bf16_supported() else torch.float32
    except (AttributeError, RuntimeError):
        return torch.float32


def load_tokenizer(model_dir: Path, padding_side: str | None = "left"):
    """The model's tokenizer with a pad token (EOS when it has none); `padding_side` None keeps
    the tokenizer's own."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if padding_side is not None:
        tokenizer.padding_side = padding_side
    return tokenizer


def load_causal_lm(model_dir: Path, *, dtype: Any = "float32", adapter: Path | None = None, trainable: bool = False):
    """The base model in `dtype` (a torch dtype or a name `resolve_dtype` takes), with the PEFT
    adapter at `adapter` on top when given (trainable or frozen)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=resolve_dtype(dtype) if isinstance(dtype, str)
                                                 else dtype)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter, is_trainable=trainable)
    return model


def eos_ids(model, tokenizer) -> list[int]:
    """Every token id that ends a reply: the generation config's EOS ids and the tokenizer's."""
    eos = model.generation_config.eos_token_id
    eos = eos if isinstance(eos, list) else [eos] if eos is not None else []
    return sorted({*eos, tokenizer.eos_token_id} - {None})
