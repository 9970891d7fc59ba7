"""The MARO update on a tiny model: advantages, weights and recorded log-probs reach the loss."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from maro.learner.config import UpdateConfig
from maro.learner.samples import TrainSample, encode_sample
from maro.learner.trainer import train_adapter

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
                             config=_config(beta=0.04, max_steps=1, trunk_cache=False,
                                            **({"base_logprobs_as_reference": True} | config)))

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
                       config=_config(beta=0.04, max_steps=1, base_logprobs_as_reference=True, trunk_cache=False))
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


def _rows(n: int = 6) -> list[TrainSample]:
    texts = (GOOD, BAD, "[Offer: 3]", "[Accept] now")
    prompts = (PROMPT, PROMPT * 2, [{"role": "user", "content": "Sell the hat; your cost is 4."}])
    return [TrainSample(i, prompts[i % 3], texts[i % 4], advantage=(-1.0) ** i * (1 + i / 10)) for i in range(n)]


def test_trunk_cache_trains_exactly_like_the_full_forward(tiny_model_dir, tmp_path):
    """With LoRA on the top layer only, the trunk below runs once per sample, and the prompt prefix a
    micro-batch shares (the chat template's system prompt) once per micro-batch: the same loss, KL
    and trained weights as the full forward of every step (TRL's path), in fp32, over two epochs."""
    base, tok = _load(tiny_model_dir)
    rows = []
    for s in _rows():  # recorded old log-probs, so both paths take the same ratios in the second epoch
        ids, logps = _token_logps(base, tok, s)
        rows.append(TrainSample(s.behavior_id, s.messages, s.completion, s.advantage, old_logprobs=logps,
                                old_token_ids=ids))
    runs = {}
    for trunk in (True, False):
        metrics = train_adapter(rows, base_model_dir=tiny_model_dir, init_adapter_dir=None,
                                output_dir=tmp_path / str(trunk),
                                config=_config(lora_layers=1, beta=0.04, epochs=2, learning_rate=1e-2,
                                               trunk_cache=trunk, share_prefix=True, batch_size=6))
        runs[trunk] = metrics, _lora_b(tmp_path / str(trunk))
    (on, on_b), (off, off_b) = runs[True], runs[False]
    total = _num_layers(tiny_model_dir)
    assert on["maro/trunk_layers"] == total - 1 and off["maro/trunk_layers"] == 0
    assert on["maro/shared_prefix_tokens"] >= 16 * (6 - 1)  # one micro-batch of six rows
    assert on["maro/kl"] > 0
    for key in ("maro/loss", "maro/kl", "entropy"):
        assert on[key] == pytest.approx(off[key], rel=1e-3, abs=1e-6), key
    for a, b in zip(on_b, off_b, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def _num_layers(model_dir: Path) -> int:
    import json

    return json.loads((model_dir / "config.json").read_text())["num_hidden_layers"]


def test_bf16_update_with_recomputed_old_logprobs_starts_at_ratio_one_and_zero_kl(tiny_model_dir, tmp_path):
    """bf16 rounds by batch layout; fixed micro-batches make the pre-computed reference and old
    policy exactly the training forward's: no movement, no KL, no clipping, over two epochs."""
    base, tok = _load(tiny_model_dir)
    rows = []
    for s in _rows():
        ids, logps = _token_logps(base, tok, s)  # fp32 play-time log-probs: off by bf16's rounding
        rows.append(TrainSample(s.behavior_id, s.messages, s.completion, s.advantage, old_logprobs=logps,
                                old_token_ids=ids))
    still = train_adapter(rows, base_model_dir=tiny_model_dir, init_adapter_dir=None, output_dir=tmp_path / "still",
                          config=_config(lora_layers=1, beta=0.04, epochs=2, learning_rate=1e-12, bf16=True,
                                         old_logprobs="recompute", batch_size=3))
    assert still["maro/kl"] == 0.0 and still["maro/clip_ratio"] == 0.0
    assert still["maro/old_logp_recomputed"] == 2 * len(rows)
    moved = train_adapter(rows, base_model_dir=tiny_model_dir, init_adapter_dir=None, output_dir=tmp_path / "moved",
                          config=_config(lora_layers=1, beta=0.04, epochs=2, learning_rate=5e-2, bf16=True,
                                         old_logprobs="recompute", batch_size=3))
    assert moved["maro/kl"] > 0 and math.isfinite(moved["maro/loss"])


def test_recompute_keeps_the_recorded_logprobs_of_older_versions(tokenizer_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    ids = tok(GOOD, add_special_tokens=False)["input_ids"]
    mine = TrainSample(0, PROMPT, GOOD, 1.0, old_logprobs=[-1.0] * len(ids), old_token_ids=ids)
    older = TrainSample(1, PROMPT, GOOD, 1.0, old_logprobs=[-1.0] * len(ids), old_token_ids=ids, on_policy=False)
    kw = dict(max_prompt_tokens=64, max_completion_tokens=16, recompute_on_policy=True)
    assert encode_sample(mine, tok, **kw).old_logprobs is None
    assert encode_sample(older, tok, **kw).old_logprobs == [-1.0] * len(ids)
    assert encode_sample(mine, tok, max_prompt_tokens=64, max_completion_tokens=16).old_logprobs is not None


def test_fixed_batches_visit_every_sample_once_per_epoch_in_the_same_company():
    from maro.learner.trainer import FixedBatchSampler

    lengths = [50, 10, 30, 20, 40, 60, 70]
    sampler = FixedBatchSampler(lengths, batch_size=3, seed=1)
    assert sorted(len(b) for b in sampler.batches) == [1, 3, 3]
    assert all(max(lengths[i] for i in a) <= min(lengths[i] for i in b)
               for a, b in zip(sampler.batches, sampler.batches[1:]))  # grouped by length
    epochs = [list(sampler) for _ in range(4)]
    for order in epochs:
        assert sorted(order) == list(range(7))
        chunks = [order[i:i + 3] for i in range(0, 7, 3)]
        assert sorted(map(sorted, chunks)) == sorted(map(sorted, sampler.batches))
        assert len(chunks[-1]) == 1  # the short batch comes last
    assert len({tuple(o) for o in epochs}) > 1  # the batches' order changes between epochs


def test_trunk_depth_counts_the_frozen_layers_below_the_lowest_adapter(tiny_model_dir):
    from maro.learner.trainer import _load_policy
    from maro.learner.trunk import trunk_depth

    total = _num_layers(tiny_model_dir)
    top, _ = _load_policy(tiny_model_dir, None, _config(lora_layers=1))
    every, _ = _load_policy(tiny_model_dir, None, _config())
    assert trunk_depth(top) == total - 1 and trunk_depth(every) == 0


def test_the_shared_prefix_is_the_rows_common_opening_and_leaves_each_last_prompt_token(tiny_model_dir):
    from maro.learner.samples import EncodedSample, collate
    from maro.learner.trainer import _load_policy
    from maro.learner.trunk import TrunkCache, trunk_depth

    model, _ = _load_policy(tiny_model_dir, None, _config(lora_layers=1))
    trunk = TrunkCache(model, trunk_depth(model), share_prefix=True)
    opening = list(range(100, 130))

    def batch(*prompts):
        return collate([EncodedSample(list(p), [7, 8], None) for p in prompts], pad_token_id=0)

    assert trunk.shared(batch(opening + [5, 6], opening + [9])) == 30
    assert trunk.shared(batch(opening, opening + [9, 9])) == 29  # the shorter prompt keeps its last token
    assert trunk.shared(batch(opening[:10] + [1], opening[:10] + [2])) == 0  # under MIN_SHARED_TOKENS
    assert trunk.shared(batch(opening + [5])) == 0  # one row: nothing to share
    assert TrunkCache(model, trunk_depth(model)).shared(batch(opening + [5], opening + [6])) == 0
