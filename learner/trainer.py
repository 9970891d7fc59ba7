"""The MARO update: a GRPOTrainer that trains a LoRA adapter on logged behaviors with given advantages."""

from __future__ import annotations

import math
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch
from datasets import Dataset
from transformers.trainer_callback import PrinterCallback
from trl import GRPOConfig, GRPOTrainer
from trl.trainer.utils import RepeatSampler, selective_log_softmax, selective_log_softmax_and_entropy

from maro.learner.config import UpdateConfig
from maro.learner.models import load_causal_lm, load_tokenizer
from maro.learner.samples import EncodedSample, TrainSample, collate, encode_sample
from maro.learner.trunk import FixedBatchSampler, TrunkBatch, TrunkCache, trunk_depth


def _unused_reward(*args, **kwargs) -> list[float]:
    """Placeholder that GRPOTrainer's constructor demands; advantages arrive with the samples."""
    raise RuntimeError("MaroGRPOTrainer never scores completions; advantages come from MARO")


class MaroGRPOTrainer(GRPOTrainer):
    """GRPOTrainer whose batches are logged behaviors with MARO advantages, never generated.

    The train dataset is an index column into `samples`; `_generate_and_score_completions`
    tokenises the indexed samples and returns the tensors `_compute_loss` consumes, with
    `advantages = A_b * w_b`. Folding the weight is exact for the clipped PG term because for
    w > 0, min(r*A*w, clip(r)*A*w) = w * min(r*A, clip(r)*A); the KL term stays unweighted.
    """

    def __init__(self, *, samples: list[TrainSample], args: GRPOConfig, max_prompt_tokens: int,
                 base_logprobs_as_reference: bool = False, trunk_cache: bool = False,
                 share_prefix: bool = False, recompute_old: bool = False, **kwargs):
        self.samples = samples
        self.max_prompt_tokens = max_prompt_tokens
        self.base_logprobs_as_reference = base_logprobs_as_reference
        self.recompute_old = recompute_old
        self.use_trunk = trunk_cache
        self.share_prefix = share_prefix
        self.trunk: TrunkCache | None = None  # filled at the first batch, on the training device
        self.encoded: list[EncodedSample] | None = None
        self.prepass: dict[int, tuple[torch.Tensor | None, torch.Tensor | None]] = {}  # index -> (old, ref)
        self._trunk_batch: tuple[torch.Tensor, TrunkBatch] | None = None  # (input ids, trunk output)
        self.sampler: FixedBatchSampler | None = None
        self.old_logp_recomputed = 0  # rows whose old log-probs came from the current policy
        self.reference_forwards_skipped = 0  # micro-batches whose KL reference was their recorded base log-probs
        self.tokens_seen = 0  # unpadded prompt + completion tokens trained on
        dataset = Dataset.from_dict({"sample_index": list(range(len(samples)))})
        super().__init__(args=args, train_dataset=dataset, reward_funcs=[_unused_reward], **kwargs)
        # Given a PeftModel with beta > 0, TRL copies the adapter into a frozen "ref" adapter. MARO's
        # reference is the base model (see _generate_and_score_completions), so drop the copy: it
        # would cost memory and be saved beside the trained adapter.
        peft_model = self.accelerator.unwrap_model(self.model)
        if "ref" in getattr(peft_model, "peft_config", {}):
            peft_model.delete_adapter("ref")
            peft_model.set_adapter("default")

    def _get_train_sampler(self, dataset=None):
        if self.use_trunk:
            if self.sampler is None:
                lengths = [len(e.prompt_ids) + len(e.completion_ids) for e in self._encode_all()]
                self.sampler = FixedBatchSampler(lengths, self.args.per_device_train_batch_size, self.args.seed)
            return self.sampler
        # One-to-one: every sample once per epoch, shuffled by the seed (RepeatSampler with
        # batch_size 1 drops nothing and reshuffles each epoch from its own generator).
        return RepeatSampler(
            data_source=dataset if dataset is not None else self.train_dataset,
            mini_repeat_count=1,
            batch_size=1,
            repeat_count=1,
            shuffle=True,
            seed=self.args.seed,
        )

    def _get_per_token_logps_and_entropies(
        self, model, input_ids, attention_mask, logits_to_keep, batch_size=None, compute_entropy=False, **_
    ):
        # TRL's fused LM head scores only completion positions on Triton devices; elsewhere (CPU) it
        # projects every position, prompt included, through the vocabulary: ~17x the work for a
        # 350-token prompt and a 20-token completion. Text-only, so asking for the last
        # `logits_to_keep + 1` logits is exact and cheap.
        with self.accelerator.autocast():
            if self._trunk_batch is not None and self._trunk_batch[0].shape == input_ids.shape \
                    and torch.equal(self._trunk_batch[0], input_ids):
                logits = self.trunk.top_logits(model, self._trunk_batch[1], logits_to_keep + 1)
            else:
                logits = model(input_ids=input_ids, attention_mask=attention_mask,
                               logits_to_keep=logits_to_keep + 1).logits
        logits = logits[:, :-1].float()  # position t predicts token t + 1
        targets = input_ids[:, -logits_to_keep:]
        if compute_entropy:  # entropy is only logged (no entropy bonus), so it needs no gradient
            logps, entropies = selective_log_softmax_and_entropy(
                logits, targets, entropy_requires_grad=False, temperature=self.temperature
            )
            return logps, entropies, None
        return selective_log_softmax(logits, targets, temperature=self.temperature), None, None

    def _per_token_logps(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        input_ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
        attention_mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
        logps, _, _ = self._get_per_token_logps_and_entropies(
            self.model, input_ids, attention_mask, batch["completion_ids"].size(1)
        )
        return logps

    def _encode_all(self) -> list[EncodedSample]:
        if self.encoded is None:
            self.encoded = [
                encode_sample(s, self.processing_class, max_prompt_tokens=self.max_prompt_tokens,
                              max_completion_tokens=self.max_completion_length, recompute_on_policy=self.recompute_old)
                for s in self.samples
            ]
        return self.encoded

    def _generate_and_score_completions(self, inputs: list[dict]) -> dict[str, torch.Tensor]:
        device = self.accelerator.device
        indices = [row["sample_index"] for row in inputs]
        samples = [self.samples[i] for i in indices]
        encoded = self._encode_all()
        batch = {k: v.to(device) for k, v in collate([encoded[i] for i in indices],
                                                      self.processing_class.pad_token_id).items()}
        has_old, recorded = batch.pop("has_old_logps"), batch.pop("old_logps")
        old_is_reference = batch.pop("old_is_reference")
        if self.use_trunk:
            self._trunk_scores(batch, indices, has_old, recorded)
        else:
            with torch.no_grad():
                old_logps = self._old_logps(batch, has_old, recorded)
                if old_logps is not None:
                    batch["old_per_token_logps"] = old_logps
                if self.beta != 0.0:
                    batch["ref_per_token_logps"] = self._ref_logps(batch, old_is_reference, recorded)

        advantages = torch.tensor([s.advantage for s in samples], dtype=torch.float32, device=device)
        weights = torch.tensor([s.weight for s in samples], dtype=torch.float32, device=device)
        batch["advantages"] = advantages * weights
        batch["num_items_in_batch"] = batch["completion_mask"].sum()
        self._log_batch(batch, advantages, weights, num_recomputed=int((~has_old).sum()))
        return batch

    def _trunk_scores(self, batch, indices: list[int], has_old: torch.Tensor, recorded: torch.Tensor) -> None:
        """Old and reference log-probs from the pre-pass (or, for a batch whose rows all lack recorded
        ones in a single pass, the policy's own: TRL's ratio-1 path); rows are tagged for the forward."""
        if self.trunk is None:
            self._fill_trunk()
        device = self.accelerator.device
        batch["sample_index"] = torch.tensor(indices, device=device)  # TRL shuffles rows after this
        mask = batch["completion_mask"]
        missing = [row for row, i in enumerate(indices) if not bool(has_old[row]) and self.prepass[i][0] is None]
        if len(missing) < len(indices):
            old = recorded.clone()
            if missing:  # a mixed batch in a single pass: the current policy for the rows it must score
                with torch.no_grad():
                    current = self._trunk_logps(self.accelerator.unwrap_model(self.model), batch, indices)
                old[missing] = current[missing]
            for row, i in enumerate(indices):
                if not bool(has_old[row]) and self.prepass[i][0] is not None:
                    n = int(mask[row].sum())
                    old[row, :n] = self.prepass[i][0][:n]
            batch["old_per_token_logps"] = old
        if self.beta != 0.0:
            ref = torch.full_like(recorded, -1e4)  # finite on padding: TRL takes exp(ref - logp) before masking
            for row, i in enumerate(indices):
                n = int(mask[row].sum())
                ref[row, :n] = self.prepass[i][1][:n]
            batch["ref_per_token_logps"] = ref

    def _trunk_logps(self, model, batch: dict[str, torch.Tensor], indices: list[int]) -> torch.Tensor:
        """Per-token log-probs of the batch's completions from the cached trunk, under `model` as it is."""
        keep = batch["completion_ids"].size(1)
        with self.accelerator.autocast():
            logits = self.trunk.top_logits(model, self.trunk.batch(indices, batch), keep + 1)
        return selective_log_softmax(logits[:, :-1].float(), batch["completion_ids"], temperature=self.temperature)

    def _compute_loss(self, model, inputs):
        if "sample_index" not in inputs:
            return super()._compute_loss(model, inputs)
        ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1)
        self._trunk_batch = (ids, self.trunk.batch(inputs["sample_index"].tolist(), inputs))
        try:
            return super()._compute_loss(model, inputs)
        finally:
            self._trunk_batch = None

    def _passes(self) -> float:
        """How many times the update visits each sample (epochs, or max_steps' share)."""
        args, n = self.args, len(self.samples)
        if args.max_steps and args.max_steps > 0:
            return args.max_steps * args.per_device_train_batch_size * args.gradient_accumulation_steps / n
        return float(args.num_train_epochs)

    @torch.no_grad()
    def _fill_trunk(self) -> None:
        """Run the frozen trunk once per sample, then the top layers for the reference (the adapter off)
        and, when samples are visited more than once, the old policy where no recorded log-probs serve;
        each in the micro-batch the sample trains in, so the layout (and bf16's rounding) is the same."""
        model = self.accelerator.unwrap_model(self.model)
        self.trunk = TrunkCache(model, trunk_depth(model), share_prefix=self.share_prefix)
        encoded, pad = self._encode_all(), self.processing_class.pad_token_id
        batches = self._get_train_sampler().batches
        self.trunk.fill(encoded, batches, pad)
        self.prepass = {i: (None, None) for b in batches for i in b}
        if self.beta == 0.0 and self._passes() <= 1:
            return
        device = self.accelerator.device
        for rows in batches:
            batch = {k: v.to(device) for k, v in collate([encoded[i] for i in rows], pad).items()}
            old = ref = None
            if self._passes() > 1 and not bool(batch["has_old_logps"].all()):
                old = self._trunk_logps(model, batch, rows)
            if self.beta != 0.0:
                with model.disable_adapter():
                    ref = self._trunk_logps(model, batch, rows)
            for row, i in enumerate(rows):
                needs_old = old is not None and not bool(batch["has_old_logps"][row])
                self.prepass[i] = (old[row] if needs_old else None, None if ref is None else ref[row])

    def _ref_logps(self, batch, old_is_reference: torch.Tensor, recorded: torch.Tensor) -> torch.Tensor:
        """Log-probs of MARO's reference, the base model (the adapter switched off, not a copy of it).
        A micro-batch played entirely by the base model recorded them at play time: no forward."""
        if self.base_logprobs_as_reference and bool(old_is_reference.all()):
            self.reference_forwards_skipped += 1
            # Padding holds 0; TRL takes exp(ref - logp) there before masking, so keep it finite.
            return recorded.masked_fill(batch["completion_mask"] == 0, -1e4)
        with self.accelerator.unwrap_model(self.model).disable_adapter():
            return self._per_token_logps(batch)

    def _old_logps(self, batch, has_old: torch.Tensor, recorded: torch.Tensor) -> torch.Tensor | None:
        """Recorded old log-probs where aligned, the current policy's elsewhere (ratio 1)."""
        # steps_per_generation == num_iterations == 1: the policy now is the one this batch trains
        # from, so recomputing gives ratio 1. With no recorded row, returning None lets TRL use
        # per_token_logps.detach(): identical, one forward cheaper, exact even with dropout.
        if not bool(has_old.any()):
            return None
        if bool(has_old.all()):
            return recorded
        return torch.where(has_old.unsqueeze(1), recorded, self._per_token_logps(batch))

    def _log_batch(self, batch, advantages: torch.Tensor, weights: torch.Tensor, num_recomputed: int) -> None:
        self.old_logp_recomputed += num_recomputed
        self.tokens_seen += int(batch["prompt_mask"].sum() + batch["completion_mask"].sum())
        metrics = self._metrics["train"]
        metrics["maro/advantage_mean"].append(advantages.mean().item())
        metrics["maro/weight_mean"].append(weights.mean().item())
        metrics["maro/weighted_advantage_mean"].append(batch["advantages"].mean().item())
        metrics["maro/old_logp_recomputed"].append(float(num_recomputed))
        metrics["maro/completion_tokens"].append(batch["completion_mask"].sum(1).float().mean().item())
        metrics["maro/prompt_tokens"].append(batch["prompt_mask"].sum(1).float().mean().item())


def grpo_config(config: UpdateConfig, work_dir: Path) -> GRPOConfig:
    """The GRPOConfig for one update; spelled out where TRL's defaults differ from what MARO needs."""
    return GRPOConfig(
        output_dir=str(work_dir),
        use_cpu=not torch.cuda.is_available(),
        bf16=config.bf16,  # GRPOConfig defaults to bf16 on
        gradient_checkpointing=config.gradient_checkpointing,  # GRPOConfig defaults to on
        learning_rate=config.learning_rate,
        lr_scheduler_type="constant",  # each update is short and resumes the policy: no per-update decay
        warmup_steps=0,
        optim="adamw_torch",
        weight_decay=0.0,  # keeps zero-advantage updates at exactly zero
        max_grad_norm=config.max_grad_norm,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        # One prepared batch per micro-step: no generation buffer to split, no stale old log-probs.
        steps_per_generation=1,
        num_iterations=1,
        # Only for GRPOConfig's checks (>= 2, divides the batch); our sampler never repeats rows.
        num_generations=config.batch_size,
        max_completion_length=config.max_completion_tokens,
        beta=config.beta,
        epsilon=config.epsilon,
        loss_type=config.loss_type,
        temperature=config.temperature,  # the policy as it played: recorded log-probs are tempered alike
        seed=config.seed,
        data_seed=config.seed,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        remove_unused_columns=False,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )


def _load_policy(base_model_dir: Path, init_adapter_dir: Path | None, config: UpdateConfig):
    """Base model + tokenizer, with the current adapter (trainable) or a fresh LoRA on top."""
    from peft import LoraConfig, get_peft_model

    tokenizer = load_tokenizer(base_model_dir, padding_side="left")  # TRL's contract; our collate pads left itself
    model = load_causal_lm(base_model_dir, dtype="bfloat16" if config.bf16 else "float32", adapter=init_adapter_dir,
                           trainable=True)
    if init_adapter_dir is None:
        layers = None
        if config.lora_layers is not None:
            total = model.config.num_hidden_layers
            layers = list(range(max(0, total - config.lora_layers), total))
        lora = LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=list(config.target_modules),
            layers_to_transform=layers,
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, lora)
    return model, tokenizer


def summarise_logs(log_history: list[dict]) -> dict[str, float]:
    """Mean of every numeric per-step log under its TRL name (the final summary passes through)."""
    values: dict[str, list[float]] = defaultdict(list)
    for entry in log_history:
        for key, value in entry.items():
            if key not in ("step", "epoch", "total_flos") and isinstance(value, (int, float)) and math.isfinite(value):
                values[key].append(float(value))
    return {key: sum(v) / len(v) for key, v in values.items()}


def train_adapter(
    samples: list[TrainSample],
    *,
    base_model_dir: Path,
    init_adapter_dir: Path | None,
    output_dir: Path,
    config: UpdateConfig,
) -> dict[str, float]:
    """Run one MARO update on `samples` and save only the LoRA adapter into `output_dir`.

    Continues from `init_adapter_dir` when given (the current policy), else from a fresh LoRA.
    Returns TRL's per-step logs averaged over steps plus `maro/*` summaries.
    """
    if not samples:
        raise ValueError("train_adapter needs at least one TrainSample; got an empty list")
    from transformers import set_seed

    set_seed(config.seed)
    model, tokenizer = _load_policy(Path(base_model_dir), init_adapter_dir, config)
    with tempfile.TemporaryDirectory(prefix="maro-grpo-") as work_dir:
        trainer = MaroGRPOTrainer(
            samples=samples,
            model=model,
            args=grpo_config(config, Path(work_dir)),
            processing_class=tokenizer,
            max_prompt_tokens=config.max_prompt_tokens,
            base_logprobs_as_reference=bool(config.base_logprobs_as_reference),
            trunk_cache=config.trunk_cache,
            share_prefix=config.share_prefix,
            recompute_old=config.old_logprobs == "recompute",
        )
        # Metrics come back in the return value; printing every step's dict only adds noise.
        trainer.remove_callback(PrinterCallback)
        start = time.perf_counter()
        trainer.train()
        wall = time.perf_counter() - start

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    trainer.accelerator.unwrap_model(trainer.model).save_pretrained(output_dir)

    metrics = summarise_logs(trainer.state.log_history)
    metrics.update(
        {
            "maro/steps": float(trainer.state.global_step),
            "maro/samples": float(len(samples)),
            "maro/loss": metrics.get("loss", float("nan")),
            "maro/kl": metrics.get("kl", 0.0),
            "maro/clip_ratio": metrics.get("clip_ratio/region_mean", 0.0),
            "maro/grad_norm": metrics.get("grad_norm", float("nan")),
            "maro/advantage_mean": sum(s.advantage for s in samples) / len(samples),
            "maro/old_logp_recomputed": float(trainer.old_logp_recomputed),
            "maro/reference_forwards_skipped": float(trainer.reference_forwards_skipped),
            "maro/trunk_layers": float(trainer.trunk.depth) if trainer.trunk is not None else 0.0,
            "maro/shared_prefix_tokens": float(trainer.trunk.shared_tokens) if trainer.trunk is not None else 0.0,
            "maro/tokens_per_second": trainer.tokens_seen / wall if wall > 0 else 0.0,
            "maro/wall_seconds": wall,
        }
    )
    return metrics
