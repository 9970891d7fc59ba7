"""Tests for the local model folders: tokenizer, tiny model, and the real SmolLM2 conversion."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from maro.learner import localmodel
from tests.helpers import make_tiny_model


def test_tokenizer_has_chatml_template_and_pad(tokenizer_dir):
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False)
    assert text.endswith("<|im_start|>assistant\n")
    assert "<|im_start|>user\nhi<|im_end|>" in text
    assert tok.pad_token is not None
    assert not list(tokenizer_dir.glob("*.safetensors"))  # the fast path carries no weights


def test_tokenizer_dir_is_idempotent(tokenizer_dir):
    stamp = (tokenizer_dir / "tokenizer.json").stat().st_mtime_ns
    assert localmodel.tokenizer_dir() == tokenizer_dir
    assert (tokenizer_dir / "tokenizer.json").stat().st_mtime_ns == stamp


def test_tiny_model_loads_and_generates(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert config["num_hidden_layers"] == 2 and config["vocab_size"] == len(tok)
    enc = tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = model.generate(**enc, max_new_tokens=4, do_sample=False, pad_token_id=tok.pad_token_id)
    assert out.shape[1] == enc["input_ids"].shape[1] + 4


def test_tiny_model_is_deterministic_from_seed(tmp_path):
    a = make_tiny_model(tmp_path / "a", seed=3)
    b = make_tiny_model(tmp_path / "b", seed=3)
    c = make_tiny_model(tmp_path / "c", seed=4)
    weights = [AutoModelForCausalLM.from_pretrained(p).model.embed_tokens.weight for p in (a, b, c)]
    assert torch.equal(weights[0], weights[1])
    assert not torch.equal(weights[0], weights[2])


def test_resolve_model_accepts_folder_and_rejects_unknown(tiny_model_dir, tmp_path):
    assert localmodel.resolve_model(str(tiny_model_dir)) == tiny_model_dir
    with pytest.raises(FileNotFoundError):
        localmodel.resolve_model(tmp_path / "missing")


def test_cache_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("MARO_CACHE", str(tmp_path))
    assert localmodel.cache_dir() == tmp_path


@pytest.mark.slow
def test_pull_converts_smollm2_which_follows_a_one_shot_format():
    from maro.learner.serving.batch import generate
    from maro.learner.serving.engine import GenerationEngine, RowRequest

    folder = localmodel.pull()
    assert localmodel.pull() == folder  # second call finds the finished conversion
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config
    engine = GenerationEngine(folder)
    messages = [
        {"role": "system", "content": "You are bargaining. Answer only with an offer like [Offer: N]."},
        {"role": "user", "content": "The item is worth 10. Make your offer."},
        {"role": "assistant", "content": "[Offer: 6]"},
        {"role": "user", "content": "The item is worth 20. Make your offer."},
    ]
    row = RowRequest(engine.encode_chat(messages), temperature=0.0, top_p=1.0, max_tokens=12)
    (out,) = generate(engine, [row])
    assert "[Offer:" in out.text and "]" in out.text
