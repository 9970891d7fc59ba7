"""Which update settings move the policy within an hour without collapsing it: a resumable sweep.

    python benchmarks/update_settings.py --out ~/maro-runs/settings [--game kuhn_poker-v1]
        [--iterations 8] [--matches 32] [--probe 32] [--settings lr1e-4 lr3e-4 ...]

Each setting is one `maro selfplay` run folder under --out from the same base model and seeds
(today's defaults, `default_learner()`, with the setting's changes), with the probe on: after
every update the new adapter plays --probe matches against the scripted bot on fixed seeds. A
killed sweep resumes where it stopped. Prints per setting: iterations, wall time, per-token KL
to the base, entropy and clip fraction of the last update, the valid-action rate of the last
iteration, and the probe's mean outcome and valid rate at the start and after the last update.
Run it with nothing else loading the CPU.
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

SETTINGS: dict[str, dict] = {
    "lr1e-4": {"update": {"learning_rate": 1e-4}},  # the default before this sweep
    "lr3e-4": {"update": {"learning_rate": 3e-4}},  # the sweep's choice, now the default
    "lr1e-3": {"update": {"learning_rate": 1e-3}},
    "lr3e-4-epochs2": {"update": {"learning_rate": 3e-4, "epochs": 2}},
    "lr3e-4-drop0": {"update": {"learning_rate": 3e-4}, "maro": {"drop_zero_advantage": True}},
    "lr3e-4-r16": {"update": {"learning_rate": 3e-4, "lora_r": 16, "lora_alpha": 32}},
}


def learner_for(name: str) -> dict:
    from maro.learner.loop import default_learner

    learner = default_learner().model_dump()
    for part, values in SETTINGS[name].items():
        learner[part] = {**learner[part], **values}
    return learner


def run_one(out: Path, name: str, args) -> dict:
    from rich.console import Console

    from maro.learner.loop import SelfPlayConfig, SelfPlayRun
    from maro.learner.runs import read_metrics

    folder = out / name
    config = SelfPlayConfig(run_dir=folder, games=[args.game], iterations=args.iterations,
                            matches_per_iteration=args.matches, concurrency=min(args.matches, 64), seed=args.seed,
                            model=args.model, probe_matches=args.probe, learner=learner_for(name))
    if len(read_metrics(folder)) < args.iterations:
        asyncio.run(SelfPlayRun(config, Console(stderr=True)).run())
    return summarise(name, read_metrics(folder))


def summarise(name: str, lines: list[dict]) -> dict:
    last = lines[-1]
    update = last.get("update") or {}
    start = next((line["probe_start"] for line in lines if "probe_start" in line), {})
    return {
        "setting": name, "iterations": len(lines), "seconds": sum(line["seconds"] for line in lines),
        "kl": update.get("maro/kl"), "entropy": update.get("entropy"), "clip": update.get("maro/clip_ratio"),
        "valid_rate": last.get("valid_rate"),
        "probe_start": start.get("mean_outcome"), "probe_end": (last.get("probe") or {}).get("mean_outcome"),
        "probe_valid_start": start.get("valid_rate"), "probe_valid_end": (last.get("probe") or {}).get("valid_rate"),
        "kl_curve": [(line.get("update") or {}).get("maro/kl") for line in lines],
        "probe_curve": [(line.get("probe") or {}).get("mean_outcome") for line in lines],
    }


def _f(x, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def table(rows: list[dict]) -> str:
    out = ["| setting | iterations | minutes | KL (last) | entropy (last) | clip (last) | valid (last) | "
           "probe outcome start -> end | probe valid start -> end |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
    for r in rows:
        out.append(f"| {r['setting']} | {r['iterations']} | {r['seconds'] / 60:.0f} | {_f(r['kl'], '.2e')} | "
                   f"{_f(r['entropy'], '.3f')} | {_f(r['clip'], '.3f')} | {_f(r['valid_rate'], '.1%')} | "
                   f"{_f(r['probe_start'], '+.3f')} -> {_f(r['probe_end'], '+.3f')} | "
                   f"{_f(r['probe_valid_start'], '.1%')} -> {_f(r['probe_valid_end'], '.1%')} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path.home() / "maro-runs" / "settings")
    parser.add_argument("--game", default="kuhn_poker-v1")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--iterations", type=int, default=8)
    parser.add_argument("--matches", type=int, default=32, help="matches per iteration")
    parser.add_argument("--probe", type=int, default=32, help="probe matches against the bot per update")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    rows = []
    for name in args.settings:
        rows.append(run_one(args.out.expanduser(), name, args))
        print(f"done: {name}", file=sys.stderr, flush=True)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=2))
    print(table(rows))


if __name__ == "__main__":
    main()
