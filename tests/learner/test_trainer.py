"""The MARO update on a tiny model: advantages, weights and recorded log-probs reach the loss."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from maro.learner.samples import TrainSample, encode_sample
from maro.learner.trainer import UpdateConfig, train_adapter

PROMPT = [{"role": "user", "content": "Make an offer for the hat."}]
GOOD = "[Offer: 7]"
BAD = "I refuse to play."


def _config(**overrides) -> UpdateConfig:
    base = dict(batch_size=2, max_prompt_tokens=64, max_completion_tokens=16, beta=0.0)
    return UpdateConfig(**(base | overrides))


def _load(tiny_model_dir: Path, adapter_dir: Path | None = None):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    if adapter_dir is not None:
        model = PeftModel.from_pretrained(model, adapter_dir)
    return model.eval(), AutoTokenizer.from_pretrained(tiny_model_dir)


@torch.no_grad()
def _token_logps(model, tokenizer, sample: TrainSample) -> tuple[list[int], list[float]]:
    """Completion token ids and their log p(token | prompt, earlier tokens) under `model`."""
    enc = encode_sample(sample, tokenizer, max_prompt_tokens=64, max_completion_tokens=16)
    ids = torch.tensor([enc.prompt_ids + enc.completion_ids])
    logits = model(input_ids=ids).logits[0, len(enc.prompt_ids) - 1 : -1]
    logps = torch.log_softmax(logits.float(), dim=-1)
    picked = logps.gather(1, torch.tensor(enc.completion_ids).unsqueeze(1)).squeeze(1)
    return enc.completion_ids, picked.tolist()


def _seq_logp(model, tokenizer, completion: str) -> float:
    return sum(_token_logps(model, tokenizer, TrainSample(0, PROMPT, completion, 0.0))[1])


def _lora_b(adapter_dir: Path) -> list[torch.Tensor]:
    weights = load_file(adapter_dir / "adapter_model.safetensors")
    found = [w for name, w in weights.items() if "lora_B" in name]
    assert found, "the adapter holds no lora_B weights"
    return found


def test_empty_samples_raise(tiny_model_dir, tmp_path):
    with pytest.raises(ValueError, match="empty"):
        train_adapter([], base_model_dir=tiny_model_dir, init_adapter_dir=None, output_dir=tmp_path, config=_config())


def test_config_rejects_unknown_keys_and_nonpositive_weights():
    with pytest.raises(ValueError):
        UpdateConfig(learning_rte=1e-4)
    with pytest.raises(ValueError):
        UpdateConfig(loss_type="ppo")
    with pytest.raises(ValueError, match="weight"):
        TrainSample(0, PROMPT, GOOD, advantage=1.0, weight=0.0)


def test_training_writes_an_adapter_peft_loads(tiny_model_dir, tmp_path):
    samples = [TrainSample(i, PROMPT, GOOD if i % 2 else BAD, advantage=(-1.0) ** i) for i in range(4)]
    metrics = train_adapter(
        samples, base_model_dir=tiny_model_dir, init_adapter_dir=None, output_dir=tmp_path / "a", config=_config()
    )
    assert (tmp_path / "a" / "adapter_config.json").is_file()
    model, _ = _load(tiny_model_dir, tmp_path / "a")
    assert any("lora_A" in name for name, _ in model.named_parameters())
    assert metrics["maro/steps"] == 2 and metrics["maro/samples"] == 4
    for key in ("maro/loss", "maro/kl", "maro/clip_ratio", "maro/grad_norm", "maro/tokens_per_second", "entropy"):
        assert key in metrics


def test_advantages_move_logprobs_in_their_direction(tiny_model_dir, tmp_path):
    samples = [TrainSample(0, PROMPT, GOOD, advantage=1.0), TrainSample(1, PROMPT, BAD, advantage=-1.0)]
    base, tok = _load(tiny_model_dir)
    before = {c: _seq_logp(base, tok, c) for c in (GOOD, BAD)}
    train_adapter(
        samples * 2,
        base_model_dir=tiny_model_dir,
        init_adapter_dir=None,
        output_dir=tmp_path / "a",
        config=_config(learning_rate=1e-2, epochs=3),
    )
    tuned, tok = _load(tiny_model_dir, tmp_path / "a")
    after = {c: _seq_logp(tuned, tok, c) for c in (GOOD, BAD)}
    assert after[GOOD] > before[GOOD] + 0.5
    assert after[BAD] < before[BAD] - 0.5


def test_zero_advantages_leave_lora_unchanged(tiny_model_dir, tmp_path):
    samples = [TrainSample(i, PROMPT, GOOD, advantage=0.0) for i in range(4)]
    metrics = train_adapter(
        samples,
        base_model_dir=tiny_model_dir,
        init_adapter_dir=None,
        output_dir=tmp_path / "a",
        config=_config(learning_rate=1e-1),
    )
    assert metrics["maro/grad_norm"] == 0.0
    assert all(torch.count_nonzero(b) == 0 for b in _lora_b(tmp_path / "a"))


def test_weight_scales_the_gradient(tiny_model_dir, tmp_path):
    def grad_norm(weight: float) -> float:
        samples = [TrainSample(i, PROMPT, GOOD, advantage=0.5, weight=weight) for i in range(2)]
        out = tmp_path / f"w{weight}"
        cfg = _config(max_steps=1)
        metrics = train_adapter(
            samples, base_model_dir=tiny_model_dir, init_adapter_dir=None, output_dir=out, config=cfg
        )
        return metrics["maro/grad_norm"]

    # First step: ratio 1, beta 0, so the gradient is w * A * grad(mean log p), linear in w.
    assert grad_norm(2.0) == pytest.approx(2 * grad_norm(1.0), rel=1e-4)


def test_recorded_old_logprobs_are_used_when_aligned(tiny_model_dir, tmp_path):
    base, tok = _load(tiny_model_dir)
    ids, logps = _token_logps(base, tok, TrainSample(0, PROMPT, GOOD, 0.0))
    # Recorded log-probs far above the current ones: ratio ~ e^-5 < 1 - eps, and with A < 0 the
    # clipped term is constant, so the update is zero only if the recorded values reach the loss.
    inflated = [x + 5.0 for x in logps]
    recorded = [TrainSample(i, PROMPT, GOOD, -1.0, old_logprobs=inflated, old_token_ids=ids) for i in range(2)]
    metrics = train_adapter(
        recorded, base_model_dir=tiny_model_dir, init_adapter_dir=None, output_dir=tmp_path / "r", config=_config()
    )
    assert metrics["maro/old_logp_recomputed"] == 0
    assert metrics["clip_ratio/low_mean"] == 1.0
    assert metrics["maro/grad_norm"] == 0.0

    # Exact recorded log-probs: every ratio is 1, so the "grpo" loss is exactly -A = -1, as with
    # recomputed old log-probs; an off-by-one alignment would move the ratios and the loss.
    exact = [TrainSample(i, PROMPT, GOOD, 1.0, old_logprobs=logps, old_token_ids=ids) for i in range(2)]
    plain = [TrainSample(i, PROMPT, GOOD, 1.0) for i in range(2)]
    norms = [
        train_adapter(
            s, base_model_dir=tiny_model_dir, init_adapter_dir=None, output_dir=tmp_path / n, config=_config()
        )
        for n, s in (("exact", exact), ("plain", plain))
    ]
    assert norms[0]["maro/old_logp_recomputed"] == 0 and norms[1]["maro/old_logp_recomputed"] == 2
    assert norms[0]["maro/loss"] == pytest.approx(-1.0, abs=1e-4)
    assert norms[1]["maro/loss"] == pytest.approx(-1.0, abs=1e-4)
    assert norms[0]["maro/grad_norm"] == pytest.approx(norms[1]["maro/grad_norm"], rel=1e-3)

    misaligned = TrainSample(2, PROMPT, GOOD, -1.0, old_logprobs=inflated[:-1], old_token_ids=ids)
    missing = TrainSample(3, PROMPT, GOOD, -1.0)
    metrics = train_adapter(
        [misaligned, missing],
        base_model_dir=tiny_model_dir,
        init_adapter_dir=None,
        output_dir=tmp_path / "m",
        config=_config(),
    )
    assert metrics["maro/old_logp_recomputed"] == 2
    assert metrics["clip_ratio/region_mean"] == 0.0  # recomputed with the current policy: ratio 1
    assert metrics["maro/grad_norm"] > 0.0


def test_continuing_from_an_adapter_keeps_kl_to_the_base(tiny_model_dir, tmp_path):
    samples = [TrainSample(i, PROMPT, GOOD, advantage=1.0) for i in range(2)]
    train_adapter(
        samples,
        base_model_dir=tiny_model_dir,
        init_adapter_dir=None,
        output_dir=tmp_path / "first",
        config=_config(learning_rate=1e-2, epochs=2),
    )
    metrics = train_adapter(
        samples,
        base_model_dir=tiny_model_dir,
        init_adapter_dir=tmp_path / "first",
        output_dir=tmp_path / "second",
        config=_config(beta=0.04, max_steps=1),
    )
    # The reference is the base model, not a copy of the starting adapter (which would give KL 0).
    assert metrics["maro/kl"] > 1e-3
    # Only the trained adapter is saved: no "ref" copy beside it.
    assert not (tmp_path / "second" / "ref").exists()
    first, second = _lora_b(tmp_path / "first"), _lora_b(tmp_path / "second")
    assert any(not torch.equal(a, b) for a, b in zip(first, second, strict=True))  # training continued


def test_completion_logprobs_match_trl_fused_head(tiny_model_dir, tmp_path):
    from trl import GRPOTrainer

    from maro.learner.samples import collate
    from maro.learner.trainer import MaroGRPOTrainer, _load_policy, grpo_config

    cfg = _config()
    model, tok = _load_policy(tiny_model_dir, None, cfg)
    samples = [TrainSample(0, PROMPT, GOOD, 1.0), TrainSample(1, PROMPT * 2, BAD, 1.0)]
    trainer = MaroGRPOTrainer(
        samples=samples, model=model, args=grpo_config(cfg, tmp_path), processing_class=tok, max_prompt_tokens=64
    )
    enc = [encode_sample(s, tok, max_prompt_tokens=64, max_completion_tokens=16) for s in samples]
    batch = collate(enc, tok.pad_token_id)
    ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
    mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
    keep = batch["completion_ids"].size(1)
    with torch.no_grad():
        ours, ours_h, _ = trainer._get_per_token_logps_and_entropies(
            trainer.model, ids, mask, keep, compute_entropy=True
        )
        theirs, theirs_h, _ = GRPOTrainer._get_per_token_logps_and_entropies(
            trainer, trainer.model, ids, mask, keep, compute_entropy=True
        )
    real = batch["completion_mask"].bool()
    torch.testing.assert_close(ours[real], theirs[real], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(ours_h[real], theirs_h[real], atol=1e-4, rtol=1e-4)


def test_lora_on_the_top_layers_only(tiny_model_dir, tmp_path):
    import json

    samples = [TrainSample(i, PROMPT, GOOD if i % 2 else BAD, advantage=(-1.0) ** i) for i in range(4)]
    train_adapter(samples, base_model_dir=tiny_model_dir, init_adapter_dir=None, output_dir=tmp_path / "a",
                  config=_config(lora_layers=1))
    total = json.loads((tiny_model_dir / "config.json").read_text())["num_hidden_layers"]
    names = load_file(tmp_path / "a" / "adapter_model.safetensors").keys()
    adapted = {int(n.split(".layers.")[1].split(".")[0]) for n in names}
    assert adapted == {total - 1}


def test_recorded_base_logprobs_stand_in_for_the_reference_forward(tiny_model_dir, tmp_path):
    base, tok = _load(tiny_model_dir)
    ids, logps = _token_logps(base, tok, TrainSample(0, PROMPT, GOOD, 0.0))
    # Start from a trained adapter, so the policy differs from the base and the KL is not zero.
    train_adapter([TrainSample(i, PROMPT, GOOD, advantage=1.0) for i in range(2)], base_model_dir=tiny_model_dir,
                  init_adapter_dir=None, output_dir=tmp_path / "first", config=_config(learning_rate=1e-2, epochs=2))

    def kl_run(name: str, recorded: list[float], from_reference: bool, **config) -> dict:
        samples = [TrainSample(i, PROMPT, GOOD, 1.0, old_logprobs=recorded, old_token_ids=ids,
                               old_from_reference=from_reference) for i in range(2)]
        return train_adapter(samples, base_model_dir=tiny_model_dir, init_adapter_dir=tmp_path / "first",
                             output_dir=tmp_path / name,
                             config=_config(beta=0.04, max_steps=1, **({"base_logprobs_as_reference": True} | config)))

    forward = kl_run("forward", logps, from_reference=False)
    recorded = kl_run("recorded", logps, from_reference=True)
    assert forward["maro/reference_forwards_skipped"] == 0 and recorded["maro/reference_forwards_skipped"] == 1
    assert forward["maro/kl"] > 1e-3
    assert recorded["maro/kl"] == pytest.approx(forward["maro/kl"], rel=1e-3)
    # The recorded values are what reach the KL term: with the same (shifted) old log-probs, and so
    # the same importance ratios, the KL differs only by where the reference came from...
    shifted = [x - 1.0 for x in logps]
    as_reference = kl_run("shifted-ref", shifted, from_reference=True)
    by_forward = kl_run("shifted-fwd", shifted, from_reference=False)
    assert as_reference["maro/kl"] > by_forward["maro/kl"] + 0.1
    # ...unless the config says the play-time server was not this base model.
    off = kl_run("off", shifted, from_reference=True, base_logprobs_as_reference=False)
    assert off["maro/reference_forwards_skipped"] == 0
    assert off["maro/kl"] == pytest.approx(by_forward["maro/kl"], rel=1e-4)


def test_recorded_reference_stays_finite_on_padding_and_off_by_default(tiny_model_dir, tmp_path):
    base, tok = _load(tiny_model_dir)
    rows = []
    for i, text in enumerate((GOOD, "[Offer: 7] or a bit more")):
        ids, logps = _token_logps(base, tok, TrainSample(0, PROMPT, text, 0.0))
        rows.append(TrainSample(i, PROMPT, text, 1.0, old_logprobs=logps, old_token_ids=ids, old_from_reference=True))
    on = train_adapter(rows, base_model_dir=tiny_model_dir, init_adapter_dir=None, output_dir=tmp_path / "on",
                       config=_config(beta=0.04, max_steps=1, base_logprobs_as_reference=True))
    assert on["maro/reference_forwards_skipped"] == 1
    assert all(math.isfinite(on[k]) for k in ("maro/loss", "maro/kl", "maro/grad_norm"))
    default = train_adapter(rows, base_model_dir=tiny_model_dir, init_adapter_dir=None, output_dir=tmp_path / "off",
                            config=_config(beta=0.04, max_steps=1))
    assert default["maro/reference_forwards_skipped"] == 0
    assert on["maro/kl"] == pytest.approx(default["maro/kl"], abs=1e-5)  # both ~0: the policy starts at the base


def test_a_cut_prompt_is_not_the_reference(tokenizer_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    ids = tok("[Offer: 7]", add_special_tokens=False)["input_ids"]
    sample = TrainSample(0, PROMPT, "[Offer: 7]", 1.0, old_logprobs=[-0.1] * len(ids), old_token_ids=ids,
                         old_from_reference=True)
    assert encode_sample(sample, tok, max_prompt_tokens=512, max_completion_tokens=16).old_is_reference
    cut = encode_sample(sample, tok, max_prompt_tokens=5, max_completion_tokens=16)
    assert cut.old_logprobs is not None and not cut.old_is_reference


def test_recorded_tokens_that_run_past_a_stop_string_keep_their_log_probs(tiny_model_dir):
    """A reply stopped at ']' may end with the token '].': the sampled ids are still trained on."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    ids = tok("[Offer: 55].", add_special_tokens=False)["input_ids"]
    assert tok.decode(ids[-1:]) == "]."
    sample = TrainSample(0, PROMPT, "[Offer: 55]", 1.0, old_logprobs=[-0.5] * len(ids), old_token_ids=ids)
    enc = encode_sample(sample, tok, max_prompt_tokens=64, max_completion_tokens=16)
    assert enc.completion_ids == ids and enc.old_logprobs == [-0.5] * len(ids)
    # Ids that say something else than the completion are not trusted: recomputed from the text.
    other = TrainSample(0, PROMPT, "[Offer: 56]", 1.0, old_logprobs=[-0.5] * len(ids), old_token_ids=ids)
    assert encode_sample(other, tok, max_prompt_tokens=64, max_completion_tokens=16).old_logprobs is None
