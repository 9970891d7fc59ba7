"""Whole-loop self-play throughput: matches per hour of play plus update, today's defaults against
the tuned loop, side by side in one run, with where the time goes.

    python benchmarks/selfplay_speed.py --out ~/maro-runs/speed [--games bargaining-v1 kuhn_poker-v1]
        [--matches 16] [--iterations 2] [--model smollm2]

Each (game, setting) is one `maro selfplay` run folder under --out, played from the same base
model and seeds; a killed benchmark resumes (finished runs are read back, unfinished ones resume
where they stopped). Run it with nothing else loading the CPU. It prints, per run: matches,
seconds of play and of update, matches per hour, the valid-action rate, the model server's
prefill and decode seconds and mean decode batch, and the ratio of each setting's throughput to
the baseline's on the same game; `--json` writes the same as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

FP32 = {"dtype": "float32", "learner": {"update": {"bf16": False, "trunk_cache": False, "old_logprobs": "recorded"}}}
SETTINGS = {
    # What `maro selfplay` did before this benchmark existed: 8 matches in flight, fp32 play and update.
    "baseline": {"concurrency": 8, "stop_after_action": False, "prefix_cache_tokens": 0, **FP32},
    # More matches in flight (fuller decode batches) and replies that end at the action's bracket.
    "tuned": {"concurrency": 16, "stop_after_action": True, "prefix_cache_tokens": 0, **FP32},
    # ... and prompts that start like a recent one (rules, worked example, repairs) prefill only the rest.
    "tuned+prefix": {"concurrency": 16, "stop_after_action": True, "prefix_cache_tokens": 16_384, **FP32},
    # 16 in flight with the cache and no stop, in fp32.
    "prefix": {"concurrency": 16, "stop_after_action": False, "prefix_cache_tokens": 16_384, **FP32},
    # ... bf16 play, and a bf16 update that runs the frozen trunk once per sample.
    "bf16": {"concurrency": 16, "stop_after_action": False, "prefix_cache_tokens": 16_384},
    # ... with replies that end at the action's bracket.
    "bf16+stop": {"concurrency": 16, "stop_after_action": True, "prefix_cache_tokens": 16_384},
    # bf16, with twice the matches per iteration (and in flight) and half the iterations: the same
    # matches played and trained on in fewer, larger updates (today's defaults: 32 and 32).
    "bf16x2": {"concurrency": 32, "stop_after_action": False, "prefix_cache_tokens": 16_384, "scale": 2},
    # bf16x2 with every row of an update's micro-batch through the layers in full (no shared prefix).
    "bf16x2-full": {"concurrency": 32, "stop_after_action": False, "prefix_cache_tokens": 16_384, "scale": 2,
                    "learner": {"update": {"share_prefix": False}}},
}


def _config(name: str, **fields):
    from maro.learner.loop import SelfPlayConfig, default_learner

    setting = dict(SETTINGS[name])
    setting.pop("scale", None)
    learner = default_learner().model_dump()
    for part, values in setting.pop("learner", {}).items():
        learner[part] = {**learner[part], **values}
    return SelfPlayConfig(learner=learner, **setting, **fields)


def run_one(out: Path, game: str, name: str, args) -> dict:
    from rich.console import Console

    from maro.learner.loop import SelfPlayRun
    from maro.learner.runs import read_metrics

    folder = out / f"{game}-{name}"
    scale = SETTINGS[name].get("scale", 1)
    if args.iterations % scale:
        raise SystemExit(f"{name} plays {scale}x the matches per iteration: --iterations must divide by {scale}")
    iterations = args.iterations // scale
    config = _config(name, run_dir=folder, games=[game], iterations=iterations,
                     matches_per_iteration=args.matches * scale, seed=args.seed, model=args.model)
    lines = read_metrics(folder)
    if len(lines) < iterations:
        asyncio.run(SelfPlayRun(config, Console(stderr=True)).run())
        lines = read_metrics(folder)
    return summarise(game, name, lines)


def summarise(game: str, name: str, lines: list[dict]) -> dict:
    matches = sum(line["matches"] for line in lines)
    play = sum(line["play_seconds"] for line in lines)
    total = sum(line["seconds"] for line in lines)
    update = sum(line.get("update", {}).get("maro/update_seconds", 0.0) for line in lines)
    train = sum(line.get("update", {}).get("maro/wall_seconds", 0.0) for line in lines)
    serving = [line.get("serving") or {} for line in lines]
    attempts = sum(line["attempts"] for line in lines)
    valid = sum(line["valid_rate"] * line["attempts"] for line in lines) / attempts if attempts else 0.0
    steps = sum(s.get("steps", 0) for s in serving)
    return {
        "game": game, "setting": name, "matches": matches, "iterations": len(lines),
        "play_s": play, "update_s": update, "train_s": train, "total_s": total,
        "matches_per_hour": 3600 * matches / total if total else 0.0,
        "play_matches_per_hour": 3600 * matches / play if play else 0.0,
        "valid_rate": valid, "attempts": attempts,
        "prefill_s": sum(s.get("prefill_s", 0.0) for s in serving),
        "prefill_tokens": sum(s.get("prefill_tokens", 0) for s in serving),
        "decode_s": sum(s.get("decode_s", 0.0) for s in serving),
        "decode_rows": sum(s.get("decode_rows", 0) for s in serving),
        "mean_batch_rows": sum(s.get("decode_rows", 0) for s in serving) / steps if steps else 0.0,
        "requests": sum(s.get("requests", 0) for s in serving),
    }


def table(rows: list[dict]) -> str:
    base = {r["game"]: r["matches_per_hour"] for r in rows if r["setting"] == "baseline"}
    head = ("game", "setting", "matches", "play s", "update s", "total s", "matches/h", "x baseline", "valid",
            "requests", "prefill s", "decode s", "decode rows/req", "batch")
    body = []
    for r in rows:
        ratio = r["matches_per_hour"] / base[r["game"]] if base.get(r["game"]) else float("nan")
        per_request = r["decode_rows"] / r["requests"] if r["requests"] else 0.0
        body.append((r["game"], r["setting"], str(r["matches"]), f"{r['play_s']:.0f}", f"{r['update_s']:.0f}",
                     f"{r['total_s']:.0f}", f"{r['matches_per_hour']:.0f}", f"{ratio:.2f}", f"{r['valid_rate']:.1%}",
                     str(r["requests"]), f"{r['prefill_s']:.0f}", f"{r['decode_s']:.0f}", f"{per_request:.1f}",
                     f"{r['mean_batch_rows']:.1f}"))
    widths = [max(len(x[i]) for x in (head, *body)) for i in range(len(head))]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, body)])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path.home() / "maro-runs" / "speed")
    parser.add_argument("--games", nargs="+", default=["bargaining-v1", "kuhn_poker-v1"])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--matches", type=int, default=16, help="matches per iteration")
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    rows = []
    for game in args.games:
        for name in args.settings:
            rows.append(run_one(args.out.expanduser(), game, name, args))
            print(f"done: {game} {name}: {rows[-1]['matches_per_hour']:.0f} matches/h", file=sys.stderr, flush=True)
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
