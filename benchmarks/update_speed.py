"""Tokens per second of the MARO update step against a bare PEFT forward/backward on the same batches.

    python benchmarks/update_speed.py [--game bargaining-v1] [--matches 64] [--batch-size 8] [--steps 4]
        [--reps 3] [--warmup 1] [--model smollm2] [--bf16] [--beta 0.04] [--store PATH] [--seed 0]
        [--no-logprobs] [--threads N] [--profile]

Data: K matches of the game played with the engine and random legal actions, each acting turn
logged as the arena logs it (BehaviorRecord: the game's prompt for the seat's view and legal
actions, the action text as completion, snapshots before/after, per-token log-probs as the model
server records them, computed under the base model for the behaviors the update trains on), or
the finished matches of a real match store (`--store`); built by update_data.py beside this
script. Then, per repetition and in a rotating order:

- bookkeeping: credit() (variant maro, estimator game) over all behaviors, to_sample, and
  encode_sample + collate of every micro-batch the update trains on;
- MARO step: MaroGRPOTrainer optimisation steps, with beta as configured (the KL reference taken
  from the recorded base-model log-probs, as for behaviors played by `@base`), with beta as
  configured and a reference forward every step (`base_logprobs_as_reference` off: behaviors of
  an adapter), and with beta = 0, so the reference forward of the KL term shows apart from
  bookkeeping; model load and trainer set-up are not timed, TRL's per-step logging is;
- bare PEFT: the same base model and LoRA config, the same padded micro-batches (collated before
  timing), one forward (last C+1 logits, as the MARO trainer asks), a masked policy-gradient
  loss on completion tokens, backward, gradient clipping and an AdamW step.

Tokens are the unpadded prompt + completion tokens of the timed steps; the first `--warmup`
steps of every run are left out. Prints medians over the repetitions. Target: bookkeeping per
step under 10% of the MARO step. Bookkeeping per step counts encode + collate of one
micro-batch plus credit() and to_sample amortised over the behaviors one step trains on (an
update credits all N behaviors once and trains each once per epoch).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

for _key, _value in {"HF_HUB_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True", "TRL_EXPERIMENTAL_SILENCE": "1",
                     "TOKENIZERS_PARALLELISM": "false"}.items():
    os.environ.setdefault(_key, _value)

import torch  # noqa: E402

from maro.arena.store.records import BehaviorRecord  # noqa: E402
from maro.learner.config import UpdateConfig  # noqa: E402
from maro.learner.credit import MaroConfig, credit  # noqa: E402
from maro.learner.samples import TrainSample, collate, encode_sample  # noqa: E402
from maro.learner.trainer import MaroGRPOTrainer, _load_policy, grpo_config  # noqa: E402
from maro.learner.update import to_sample  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the data module beside this script
from update_data import load_store, play_matches, tokenizer_for, with_logprobs  # noqa: E402

# --- bookkeeping -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Bookkeeping:
    credit_s: float  # credit() over all behaviors
    to_sample_s: float  # to_sample over all credited behaviors
    encode_s: float  # encode_sample + collate of all planned micro-batches
    behaviors: int
    batches: int


def bookkeeping(matches, behaviors, plan: Sequence[Sequence[int]], tokenizer, config: UpdateConfig,
                maro: MaroConfig) -> tuple[Bookkeeping, list[TrainSample]]:
    """Time what MARO adds before the optimiser: credit, to_sample, encode + collate of `plan`."""
    t0 = time.perf_counter()
    credited = credit(matches, behaviors, maro).credited
    t1 = time.perf_counter()
    samples = [to_sample(c) for c in credited]
    t2 = time.perf_counter()
    for rows in plan:
        encoded = [encode_sample(samples[i], tokenizer, max_prompt_tokens=config.max_prompt_tokens,
                                 max_completion_tokens=config.max_completion_tokens) for i in rows]
        collate(encoded, tokenizer.pad_token_id)
    t3 = time.perf_counter()
    return Bookkeeping(t1 - t0, t2 - t1, t3 - t2, len(samples), len(plan)), samples


def bookkeeping_per_step(b: Bookkeeping, batch_size: int) -> float:
    """Encode + collate of one micro-batch, plus credit and to_sample for the behaviors it holds."""
    per_behavior = (b.credit_s + b.to_sample_s) / max(1, b.behaviors)
    return b.encode_s / max(1, b.batches) + per_behavior * batch_size


# --- timed runs ------------------------------------------------------------------------------------

@dataclass
class StepRun:
    """Seconds and unpadded tokens of each timed step of one run, and the micro-batch rows it trained on."""

    seconds: list[float]
    tokens: list[int]
    plan: list[list[int]]
    reference_forwards_skipped: int = 0

    @property
    def tokens_per_second(self) -> float:
        return sum(self.tokens) / sum(self.seconds) if self.seconds else float("nan")

    @property
    def step_seconds(self) -> float:
        """Mean over the timed steps, so that it orders runs as tokens_per_second does."""
        return sum(self.seconds) / len(self.seconds) if self.seconds else float("nan")


class _Recording(MaroGRPOTrainer):
    """MaroGRPOTrainer that notes each micro-batch's sample rows and unpadded tokens (cheap)."""

    def _generate_and_score_completions(self, inputs):
        batch = super()._generate_and_score_completions(inputs)
        self.bench_plan.append([row["sample_index"] for row in inputs])
        self.bench_tokens.append(int(batch["prompt_mask"].sum() + batch["completion_mask"].sum()))
        return batch


def _step_clock():
    """A TrainerCallback whose `marks` are the start of step 1, then the end of each step's logging."""
    from transformers import TrainerCallback

    class Clock(TrainerCallback):
        def __init__(self):
            self.marks: list[float] = []
            self.logged: set[int] = set()

        def on_step_begin(self, args, state, control, **kwargs):
            if not self.marks:
                self.marks.append(time.perf_counter())

        def on_log(self, args, state, control, logs=None, **kwargs):
            # One per-step log each step (logging_steps=1); the end-of-training summary comes after.
            if state.global_step not in self.logged and "loss" in (logs or {}):
                self.logged.add(state.global_step)
                self.marks.append(time.perf_counter())

    return Clock()


def maro_steps(samples: list[TrainSample], model_dir: Path, config: UpdateConfig, warmup: int) -> StepRun:
    """`config.max_steps` MaroGRPOTrainer steps from a fresh LoRA; times each step, TRL logging included."""
    from transformers import set_seed
    from transformers.trainer_callback import PrinterCallback

    set_seed(config.seed)
    model, tokenizer = _load_policy(model_dir, None, config)
    with tempfile.TemporaryDirectory(prefix="maro-bench-") as work_dir:
        trainer = _Recording(samples=samples, model=model, args=grpo_config(config, Path(work_dir)),
                             processing_class=tokenizer, max_prompt_tokens=config.max_prompt_tokens,
                             base_logprobs_as_reference=bool(config.base_logprobs_as_reference))
        trainer.bench_plan, trainer.bench_tokens = [], []
        trainer.remove_callback(PrinterCallback)
        clock = _step_clock()
        trainer.add_callback(clock)
        trainer.train()
    seconds = [b - a for a, b in zip(clock.marks, clock.marks[1:])]
    if len(seconds) != len(trainer.bench_tokens):
        raise RuntimeError(f"timed {len(seconds)} steps but saw {len(trainer.bench_tokens)} micro-batches "
                           "(grad_accum must be 1)")
    return StepRun(seconds[warmup:], trainer.bench_tokens[warmup:], trainer.bench_plan,
                   trainer.reference_forwards_skipped)


def batch_plan(samples: list[TrainSample], model_dir: Path, config: UpdateConfig) -> list[list[int]]:
    """The sample rows of each of the `config.max_steps` micro-batches a MaroGRPOTrainer will train
    on, read from its own dataloader (its sampler order depends only on the sample count and seed)."""
    model, tokenizer = _load_policy(model_dir, None, config)
    with tempfile.TemporaryDirectory(prefix="maro-bench-") as work_dir:
        trainer = MaroGRPOTrainer(samples=samples, model=model, args=grpo_config(config, Path(work_dir)),
                                  processing_class=tokenizer, max_prompt_tokens=config.max_prompt_tokens)
        loader, plan = trainer.get_train_dataloader(), []
        while len(plan) < config.max_steps:  # past an epoch, the trainer iterates the loader again
            plan += [[row["sample_index"] for row in batch] for batch in loader]
    return plan[:config.max_steps]


def bare_steps(batches: list[dict[str, torch.Tensor]], advantages: list[torch.Tensor], model_dir: Path,
               config: UpdateConfig, warmup: int) -> StepRun:
    """The same micro-batches through plain PEFT: forward, masked PG loss, backward, clip, AdamW step."""
    from transformers import set_seed

    set_seed(config.seed)
    model, _ = _load_policy(model_dir, None, config)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=0.0)
    seconds, tokens = [], []
    for batch, adv in zip(batches, advantages):
        start = time.perf_counter()
        ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], 1)
        mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], 1)
        c_mask = batch["completion_mask"].float()
        c_len = c_mask.size(1)
        logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=c_len + 1).logits[:, :-1].float()
        logps = torch.log_softmax(logits, -1).gather(2, batch["completion_ids"].unsqueeze(2)).squeeze(2)
        per_seq = (logps * c_mask).sum(1) / c_mask.sum(1).clamp(min=1.0)
        loss = -(per_seq * adv).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        seconds.append(time.perf_counter() - start)
        tokens.append(int(mask.sum()))
    return StepRun(seconds[warmup:], tokens[warmup:], [])


# --- the benchmark ---------------------------------------------------------------------------------

@dataclass
class Result:
    bare: list[StepRun]
    maro: list[StepRun]  # beta as configured, recorded base log-probs as the KL reference
    maro_ref: list[StepRun]  # beta as configured, a reference forward every step
    maro_nokl: list[StepRun]  # beta = 0
    books: list[Bookkeeping]
    batch_size: int
    beta: float
    padded_tokens: int  # per step, mean over the plan
    tokens: int  # unpadded, per step, mean over the plan
    behaviors: list[BehaviorRecord]  # as measured (log-probs attached)


def run_benchmark(matches, behaviors, model_dir: Path, *, batch_size: int, steps: int, reps: int,
                  warmup: int = 1, bf16: bool = False, beta: float = 0.04, logprobs: bool = True,
                  log=print) -> Result:
    """Interleaved, repeated measurements of bookkeeping, MARO steps (beta and 0) and bare PEFT steps.

    The micro-batch plan comes from the trainer's dataloader; with `logprobs`, the planned behaviors
    then get play-time log-probs under the base model (the others placeholders). Every MARO run is
    checked to have trained on the plan."""
    if steps <= warmup:
        raise ValueError(f"--steps ({steps}) must exceed --warmup ({warmup}) to time anything")
    config = UpdateConfig(batch_size=batch_size, max_steps=steps, beta=beta, bf16=bf16,
                          base_logprobs_as_reference=True)
    nokl = config.model_copy(update={"beta": 0.0})
    ref = config.model_copy(update={"base_logprobs_as_reference": False})
    maro = MaroConfig()
    model_dir = Path(model_dir)
    tokenizer = tokenizer_for(model_dir)
    _, samples = bookkeeping(matches, behaviors, [], tokenizer, config, maro)
    if not samples:
        raise ValueError("no learnable behaviors in the matches")
    if len(samples) < batch_size * steps:
        log(f"note: {len(samples)} samples < batch {batch_size} x {steps} steps; later steps reuse samples")
    log(f"{len(matches)} matches, {len(samples)} samples; planning micro-batches, log-probs, warm-up ...")
    plan = batch_plan(samples, model_dir, config)
    if logprobs:
        planned = {samples[i].behavior_id for rows in plan for i in rows}
        behaviors = with_logprobs(behaviors, model_dir, bf16, scored=planned)
        before = [x.behavior_id for x in samples]
        _, samples = bookkeeping(matches, behaviors, [], tokenizer, config, maro)
        if [x.behavior_id for x in samples] != before:
            raise RuntimeError("credit() ordered the samples differently once log-probs were attached")
    batches = [collate([encode_sample(samples[i], tokenizer, max_prompt_tokens=config.max_prompt_tokens,
                                      max_completion_tokens=config.max_completion_tokens) for i in rows],
                       tokenizer.pad_token_id) for rows in plan]
    advantages = [torch.tensor([samples[i].advantage * samples[i].weight for i in rows]) for rows in plan]
    padded = [b["prompt_ids"].numel() + b["completion_ids"].numel() for b in batches]
    unpadded = [int(b["prompt_mask"].sum() + b["completion_mask"].sum()) for b in batches]

    bare_steps(batches[:1], advantages[:1], model_dir, config, warmup=0)  # first-call costs (optimizer, kernels)
    result = Result([], [], [], [], [], batch_size, beta, round(statistics.mean(padded)), round(statistics.mean(unpadded)),
                    list(behaviors))
    jobs = {
        "maro": lambda: result.maro.append(maro_steps(samples, model_dir, config, warmup)),
        "maro_ref": lambda: result.maro_ref.append(maro_steps(samples, model_dir, ref, warmup)),
        "maro_nokl": lambda: result.maro_nokl.append(maro_steps(samples, model_dir, nokl, warmup)),
        "bare": lambda: result.bare.append(bare_steps(batches, advantages, model_dir, config, warmup)),
    }
    order = list(jobs)
    for rep in range(reps):
        books, _ = bookkeeping(matches, behaviors, plan, tokenizer, config, maro)
        result.books.append(books)
        rotated = order[rep % len(order):] + order[:rep % len(order)]
        for name in rotated:
            jobs[name]()
        for name, runs in (("maro", result.maro), ("maro_ref", result.maro_ref), ("maro_nokl", result.maro_nokl)):
            if runs[-1].plan != plan:
                raise RuntimeError(f"{name} trained on other micro-batches than the plan")
        bare, kl, kl_ref, no_kl = result.bare[-1], result.maro[-1], result.maro_ref[-1], result.maro_nokl[-1]
        book = bookkeeping_per_step(books, batch_size)
        log(f"rep {rep + 1}/{reps}: tok/s (s/step) bare {bare.tokens_per_second:.0f} ({bare.step_seconds:.2f}), "
            f"maro beta={beta:g} {kl.tokens_per_second:.0f} ({kl.step_seconds:.2f}), "
            f"with reference forward {kl_ref.tokens_per_second:.0f} ({kl_ref.step_seconds:.2f}), "
            f"maro beta=0 {no_kl.tokens_per_second:.0f} ({no_kl.step_seconds:.2f}); "
            f"bookkeeping {book * 1000:.1f} ms/step = {100 * book / kl.step_seconds:.1f}% of the step")
    return result


def summary(r: Result) -> dict[str, float]:
    """Medians over repetitions of the figures the table prints."""
    med = statistics.median
    bare_tps = med(x.tokens_per_second for x in r.bare)
    maro_tps = med(x.tokens_per_second for x in r.maro)
    nokl_tps = med(x.tokens_per_second for x in r.maro_nokl)
    ref_tps = med(x.tokens_per_second for x in r.maro_ref)
    book = med(bookkeeping_per_step(b, r.batch_size) for b in r.books)
    maro_step = med(x.step_seconds for x in r.maro)
    nokl_step = med(x.step_seconds for x in r.maro_nokl)
    ref_step = med(x.step_seconds for x in r.maro_ref)
    return {
        "bare_tps": bare_tps, "maro_tps": maro_tps, "maro_ref_tps": ref_tps, "maro_nokl_tps": nokl_tps,
        "bare_step_s": med(x.step_seconds for x in r.bare), "maro_step_s": maro_step, "maro_ref_step_s": ref_step,
        "maro_nokl_step_s": nokl_step,
        "ratio": maro_tps / bare_tps, "ratio_ref": ref_tps / bare_tps, "ratio_nokl": nokl_tps / bare_tps,
        "skipped_share": med(x.reference_forwards_skipped / max(1, len(x.plan)) for x in r.maro),
        "book_step_s": book, "book_share": book / maro_step, "book_share_nokl": book / nokl_step,
        "credit_s": med(b.credit_s for b in r.books), "to_sample_s": med(b.to_sample_s for b in r.books),
        "encode_batch_s": med(b.encode_s / max(1, b.batches) for b in r.books),
        "behaviors": float(r.books[0].behaviors),
    }


def print_table(r: Result, s: dict[str, float]) -> None:
    n_steps = len(r.bare[0].seconds)
    print(f"\nbatch {r.batch_size}, {s['behaviors']:.0f} behaviors, {n_steps} timed steps x {len(r.bare)} reps; "
          f"tokens per step {r.tokens} unpadded / {r.padded_tokens} padded; torch threads {torch.get_num_threads()}")
    print(f"{'':34} {'tokens/s':>9} {'s/step':>8} {'vs bare':>8}")
    print(f"{'bare PEFT fwd/bwd + AdamW':34} {s['bare_tps']:>9.0f} {s['bare_step_s']:>8.3f} {1.0:>8.2f}")
    print(f"{f'MARO step, beta={r.beta:g}, base ref':34} {s['maro_tps']:>9.0f} {s['maro_step_s']:>8.3f} "
          f"{s['ratio']:>8.2f}")
    print(f"{f'MARO step, beta={r.beta:g}, ref forward':34} {s['maro_ref_tps']:>9.0f} {s['maro_ref_step_s']:>8.3f} "
          f"{s['ratio_ref']:>8.2f}")
    print(f"{'MARO step, beta=0':34} {s['maro_nokl_tps']:>9.0f} {s['maro_nokl_step_s']:>8.3f} {s['ratio_nokl']:>8.2f}")
    print(f"\nbookkeeping per step: {s['book_step_s'] * 1000:.1f} ms = {100 * s['book_share']:.1f}% of the MARO step "
          f"(beta={r.beta:g}), {100 * s['book_share_nokl']:.1f}% at beta=0; target < 10%: "
          f"{'met' if s['book_share'] < 0.10 else 'NOT met'}")
    print(f"  credit() {s['credit_s'] * 1000:.1f} ms and to_sample {s['to_sample_s'] * 1000:.1f} ms for "
          f"{s['behaviors']:.0f} behaviors (per step: x {r.batch_size}/{s['behaviors']:.0f}); "
          f"encode + collate {s['encode_batch_s'] * 1000:.1f} ms per micro-batch")
    kl = s["maro_ref_step_s"] - s["maro_nokl_step_s"]
    rest = s["maro_nokl_step_s"] - s["bare_step_s"] - s["encode_batch_s"]
    print(f"  KL reference forward: {kl * 1000:+.0f} ms/step; rest of the MARO step over bare "
          f"(TRL loss, entropy, metrics, logging): {rest * 1000:+.0f} ms/step")
    print(f"  base ref: recorded base-model log-probs stood in for the reference forward in "
          f"{100 * s['skipped_share']:.0f}% of the steps (every behavior played by `@base`)")


def profile(matches, behaviors, model_dir: Path, batch_size: int, steps: int, bf16: bool, beta: float,
            top: int = 25) -> None:
    """cProfile of one bookkeeping pass and of one MARO run, the top functions by own time."""
    config = UpdateConfig(batch_size=batch_size, max_steps=steps, beta=beta, bf16=bf16)
    tokenizer = tokenizer_for(Path(model_dir))
    _, samples = bookkeeping(matches, behaviors, [], tokenizer, config, MaroConfig())
    plan = [list(range(i, min(i + batch_size, len(samples)))) for i in range(0, batch_size * steps, batch_size)]
    for title, fn in (("bookkeeping", lambda: bookkeeping(matches, behaviors, plan, tokenizer, config, MaroConfig())),
                      ("MARO steps", lambda: maro_steps(samples, model_dir, config, 0))):
        prof = cProfile.Profile()
        prof.runcall(fn)
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
        print(f"\n=== cProfile: {title} (by own time) ===\n{out.getvalue()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--game", default="bargaining-v1")
    parser.add_argument("--matches", type=int, default=64, help="matches to play (or to read with --store)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps per run, warm-up steps included")
    parser.add_argument("--warmup", type=int, default=1, help="first steps of every run left out of the timing")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--model", default="smollm2", help="a model name for resolve_model, or a model folder")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--beta", type=float, default=UpdateConfig().beta, help="KL coefficient of the MARO step")
    parser.add_argument("--store", help="read finished matches from this match store instead of playing")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first played match")
    parser.add_argument("--no-logprobs", action="store_true",
                        help="leave play-time log-probs out of played behaviors (the trainer then reuses its own)")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--profile", action="store_true", help="also print cProfile tops of bookkeeping and a MARO run")
    args = parser.parse_args()

    import transformers

    from maro.learner.localmodel import resolve_model

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)

    if args.threads:
        torch.set_num_threads(args.threads)
    model_dir = resolve_model(args.model)
    started = time.perf_counter()
    if args.store:
        matches, behaviors = load_store(args.store, args.game, args.matches)
    else:
        matches, behaviors = play_matches(args.game, args.matches, seed=args.seed)
    print(f"{args.game}: {len(matches)} matches, {len(behaviors)} behaviors in {time.perf_counter() - started:.2f}s; "
          f"model {model_dir}{' (bf16)' if args.bf16 else ''}")
    result = run_benchmark(matches, behaviors, model_dir, batch_size=args.batch_size, steps=args.steps,
                           reps=args.reps, warmup=args.warmup, bf16=args.bf16, beta=args.beta,
                           logprobs=not args.no_logprobs)
    print_table(result, summary(result))
    if args.profile:
        profile(matches, result.behaviors, model_dir, args.batch_size, args.steps, args.bf16, args.beta)
    print(f"\ntotal wall {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
