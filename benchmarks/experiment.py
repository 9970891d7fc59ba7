"""The experiment of docs/results.md: `outcome`, `rae` and `maro` from one starting point, same budget.

    python benchmarks/experiment.py --out ~/maro-runs/experiment [--games kuhn_poker-v1 bargaining-v1]
        [--variants outcome rae maro] [--seeds kuhn_poker-v1=0,1 bargaining-v1=0] [--iterations 20]
        [--matches 32] [--probe 32] [--eval-seeds 100] [--learner FILE.json] [--start base|warmstart]
        [--archive docs/results/experiment] [--summary] [--plots docs/results]

For each game, variant and training seed: one `maro selfplay` run folder (the probe on: after
every update the new adapter plays the scripted bot on fixed seeds), then the final adapter is
evaluated on held-out seeds with seats swapped against the starting point (`maro eval`, 2 x
--eval-seeds matches) and against the scripted bot, and for Kuhn poker its NashConv is computed
(`maro exploitability`). The starting point (the base model, or a warm start trained once per
game and copied into every run folder as its first version) is evaluated against the bot and
measured the same way. Every step writes its result file and is skipped when that file exists,
so a killed experiment resumes where it stopped (a self-play run resumes mid-iteration). The
budget is fixed in iterations and matches, not in wall time, so a busy machine changes the
wall time only. `--summary` prints the tables from what is there. Run it with nothing else
loading the CPU.

With `--archive DIR`, every finished run (and each starting point's measurements) is copied
there in small form: its metrics, config, evaluation and exploitability results and its final
adapter, not its match logs. A run found in the archive is restored from it and not played again,
so the experiment carries on from a committed archive on a machine where `--out` is gone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

SEED_STRIDE = 100_000
"""Training seed s plays deals from s * SEED_STRIDE on (held-out eval seeds start at 1,000,000)."""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def learner_config(variant: str, seed: int, path: Path | None) -> dict:
    from maro.learner.loop import default_learner

    learner = default_learner().model_dump(mode="json")
    if path:
        for part, values in json.loads(path.read_text()).items():
            learner[part] = {**learner[part], **values} if isinstance(values, dict) else values
    learner["maro"]["variant"] = variant
    learner["update"]["seed"] = seed
    return learner


def start_adapter(out: Path, game: str, args) -> Path | None:
    """The starting point's adapter folder: None for the base model, else the game's warm start."""
    if args.start == "base":
        return None
    from maro.learner.adapters import AdapterRegistry
    from maro.learner.localmodel import resolve_model
    from maro.learner.loop import default_learner
    from maro.learner.warmstart import WarmStartConfig, warm_start

    folder = out / f"warmstart-{game}"
    registry = AdapterRegistry(folder / "adapters")
    if not registry.versions():
        log(f"warm start on {game}")
        warm_start(folder, resolve_model(args.model), WarmStartConfig(
            games=[game], matches=args.warmstart_matches, update=default_learner().update))
    return registry.path(registry.versions()[0])


def seed_run(run_dir: Path, start: Path | None) -> None:
    """Copy the warm start into a new run folder as its first version (self-play then starts there)."""
    from maro.learner.adapters import AdapterRegistry

    registry = AdapterRegistry(run_dir / "adapters")
    if start is None or registry.versions():
        return
    staged = registry.staging()
    shutil.rmtree(staged)
    shutil.copytree(start, staged)
    meta = json.loads((start / "maro.json").read_text()) if (start / "maro.json").exists() else {"parent": None}
    meta.pop("version", None)
    registry.publish(staged, {**meta, "copied_from": str(start)})


def train(out: Path, game: str, variant: str, seed: int, start: Path | None, args) -> Path:
    from rich.console import Console

    from maro.learner.loop import SelfPlayConfig, SelfPlayRun
    from maro.learner.runs import read_metrics

    folder = out / f"{game}-{variant}-s{seed}"
    seed_run(folder, start)
    config = SelfPlayConfig(run_dir=folder, games=[game], players={game: args.players.get(game, 2)},
                            iterations=args.iterations, matches_per_iteration=args.matches,
                            concurrency=min(args.matches, 64), seed=seed * SEED_STRIDE, model=args.model,
                            probe_matches=args.probe, learner=learner_config(variant, seed, args.learner))
    if len(read_metrics(folder)) < args.iterations:
        log(f"self-play {folder.name}")
        asyncio.run(SelfPlayRun(config, Console(stderr=True)).run())
    return folder


def evaluate(folder: Path, name: str, game: str, adapter: Path | None, vs: Path | None, vs_bot: bool, args) -> dict:
    from rich.console import Console

    from maro.learner.evaluate import EvalConfig, run_eval

    done = folder / name / "eval.json"
    if not done.exists():
        log(f"eval {folder.name}/{name}")
        asyncio.run(run_eval(EvalConfig(
            run_dir=folder / name, adapter=adapter, vs=vs, vs_bot=vs_bot, games=[game],
            players={game: args.players.get(game, 2)}, matches=2 * args.eval_seeds, model=args.model),
            Console(stderr=True)))
    return json.loads(done.read_text())


def nash_conv(folder: Path, adapter: Path | None, args) -> dict:
    from maro.learner import exploitability as ex
    from maro.learner.localmodel import resolve_model

    done = folder / "exploitability.json"
    if not done.exists():
        log(f"exploitability {folder.name}")
        value, table = ex.nash_conv(ex.model_policy(resolve_model(args.model), adapter))
        done.write_text(json.dumps({"adapter": str(adapter or "base"), "nash_conv": value, "table": table}, indent=2))
    return json.loads(done.read_text())


def final_adapter(folder: Path) -> Path:
    from maro.learner.adapters import AdapterRegistry

    registry = AdapterRegistry(folder / "adapters")
    return registry.path(registry.latest())


ARCHIVED = ("*.json", "*.jsonl", "eval-*/eval.json")
"""What the archive keeps of a run folder (besides its final adapter): no match logs, no databases."""


def archive(folder: Path, into: Path | None) -> None:
    """Copy a finished run's results and final adapter to `into` (atomically: a half-written archive
    is never taken for a finished one)."""
    from maro.learner.adapters import POINTER, AdapterRegistry
    from maro.learner.runs import atomic_write

    if into is None or (into / "ARCHIVED").exists():
        return
    into.mkdir(parents=True, exist_ok=True)
    for pattern in ARCHIVED:
        for path in folder.glob(pattern):
            target = into / path.relative_to(folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    registry = AdapterRegistry(folder / "adapters")
    if (latest := registry.latest()) is not None:
        shutil.copytree(registry.path(latest), into / "adapters" / latest, dirs_exist_ok=True)
        (into / "adapters" / POINTER).write_text(latest + "\n")
    atomic_write(into / "ARCHIVED", time.strftime("%Y-%m-%d %H:%M:%S\n"))
    log(f"archived {folder.name} to {into}")


def restore(folder: Path, source: Path | None) -> bool:
    """Fill an empty run folder from its archive; True when the archive had it."""
    if source is None or not (source / "ARCHIVED").exists():
        return False
    if not (folder / "ARCHIVED").exists():
        log(f"restoring {folder.name} from {source}")
        shutil.copytree(source, folder, dirs_exist_ok=True)
    return True


def run(args) -> None:
    out = args.out.expanduser()
    out.mkdir(parents=True, exist_ok=True)
    kept = args.archive.expanduser() if args.archive else None
    for game in args.games:
        start = start_adapter(out, game, args)
        start_dir = out / f"{game}-start"
        start_dir.mkdir(exist_ok=True)
        if not restore(start_dir, kept and kept / start_dir.name):
            evaluate(start_dir, "eval-bot", game, start, None, True, args)
            if game == "kuhn_poker-v1":
                nash_conv(start_dir, start, args)
            archive(start_dir, kept and kept / start_dir.name)
        for seed in args.seeds.get(game, [0]):
            for variant in args.variants:
                name = f"{game}-{variant}-s{seed}"
                if restore(out / name, kept and kept / name):
                    continue
                folder = train(out, game, variant, seed, start, args)
                final = final_adapter(folder)
                evaluate(folder, "eval-start", game, final, start, False, args)
                evaluate(folder, "eval-bot", game, final, None, True, args)
                if game == "kuhn_poker-v1":
                    nash_conv(folder, final, args)
                archive(folder, kept and kept / name)
    log("done")


def _ci(row: dict) -> str:
    return f"{row['mean']:+.3f} [{row['ci'][0]:+.3f}, {row['ci'][1]:+.3f}]"


def summary(args) -> str:
    from maro.learner.runs import read_metrics

    out = args.out.expanduser()
    lines = ["| game | variant | seed | iterations | training min | A - start (paired) [95% CI] | "
             "A vs bot | start vs bot | valid A / start | NashConv A (start) |",
             "| --- | --- | ---: | ---: | ---: | --- | --- | --- | --- | --- |"]
    for game in args.games:
        start_dir = out / f"{game}-start"
        start_bot = _read(start_dir / "eval-bot" / "eval.json")
        start_nc = _read(start_dir / "exploitability.json")
        for seed in args.seeds.get(game, [0]):
            for variant in args.variants:
                folder = out / f"{game}-{variant}-s{seed}"
                metrics = read_metrics(folder)
                if not metrics:
                    continue
                vs_start = _read(folder / "eval-start" / "eval.json")
                vs_bot = _read(folder / "eval-bot" / "eval.json")
                nc = _read(folder / "exploitability.json")
                paired = _ci(vs_start["games"][game]["a_minus_b"]) if vs_start else "-"
                a_bot = _ci(_row(vs_bot, game, "A")) if vs_bot else "-"
                s_bot = _ci(_row(start_bot, game, "A")) if start_bot else "-"
                valid = (f"{vs_start['valid_rate'].get('A', float('nan')):.1%} / "
                         f"{vs_start['valid_rate'].get('B', float('nan')):.1%}") if vs_start else "-"
                ncs = (f"{nc['nash_conv']:.3f} ({start_nc['nash_conv']:.3f})" if nc and start_nc else "-")
                minutes = sum(line["seconds"] for line in metrics) / 60
                lines.append(f"| {game} | {variant} | {seed} | {len(metrics)} | {minutes:.0f} | {paired} | {a_bot} | "
                             f"{s_bot} | {valid} | {ncs} |")
    return "\n".join(lines)


def plot(args, folder: Path) -> list[Path]:
    """Per game: valid-action rate, the probe's outcome against the bot and the update's KL per
    iteration, one line per variant and seed (iteration 0 is the starting policy's probe)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from maro.learner.runs import read_metrics

    out = args.out.expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for game in args.games:
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
        for seed in args.seeds.get(game, [0]):
            for variant in args.variants:
                lines = read_metrics(out / f"{game}-{variant}-s{seed}")
                if not lines:
                    continue
                label = f"{variant} s{seed}"
                its = [line["iteration"] for line in lines]
                axes[0].plot(its, [line["valid_rate"] for line in lines], marker=".", label=label)
                start = next((line["probe_start"] for line in lines if "probe_start" in line), None)
                probes = [(0, start)] * bool(start) + [(line["iteration"], line["probe"]) for line in lines
                                                      if "probe" in line]
                axes[1].plot([i for i, _ in probes], [p["mean_outcome"] for _, p in probes], marker=".", label=label)
                axes[2].plot(its, [(line.get("update") or {}).get("maro/kl") for line in lines], marker=".",
                             label=label)
        for ax, title in zip(axes, ("valid-action rate (self-play)", "outcome against the bot (probe seeds)",
                                    "per-token KL to the base (update)")):
            ax.set_title(f"{game}: {title}", fontsize=9)
            ax.set_xlabel("iteration")
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=7)
        fig.tight_layout()
        path = folder / f"{game}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def _row(result: dict, game: str, side: str) -> dict:
    return next(r for r in result["games"][game]["rows"] if r["side"] == side and r["role"] == "all")


def _read(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def _seeds(items: list[str]) -> dict[str, list[int]]:
    out = {}
    for item in items:
        game, _, seeds = item.partition("=")
        out[game] = [int(s) for s in seeds.split(",") if s]
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path.home() / "maro-runs" / "experiment")
    parser.add_argument("--games", nargs="+", default=["kuhn_poker-v1", "bargaining-v1"])
    parser.add_argument("--variants", nargs="+", default=["outcome", "rae", "maro"])
    parser.add_argument("--seeds", nargs="+", default=["kuhn_poker-v1=0,1", "bargaining-v1=0"],
                        help="training seeds per game as GAME=S1,S2")
    parser.add_argument("--players", nargs="*", default=[], help="seats per game as GAME=N")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--matches", type=int, default=32, help="matches per iteration")
    parser.add_argument("--probe", type=int, default=32, help="probe matches against the bot after each update")
    parser.add_argument("--eval-seeds", type=int, default=100, help="held-out seeds (two matches each)")
    parser.add_argument("--learner", type=Path, default=None, help="JSON overriding default_learner() by section")
    parser.add_argument("--start", choices=["base", "warmstart"], default="base")
    parser.add_argument("--warmstart-matches", type=int, default=400)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--archive", type=Path, default=None,
                        help="copy finished runs here in small form, and restore runs found here")
    parser.add_argument("--summary", action="store_true", help="only print the tables of what is there")
    parser.add_argument("--plots", type=Path, default=None, help="write the curves (PNG per game) here")
    args = parser.parse_args(argv)
    args.seeds = _seeds(args.seeds)
    args.players = {g: int(n) for g, _, n in (p.partition("=") for p in args.players)}
    if not args.summary:
        run(args)
    elif args.archive:
        for source in sorted(args.archive.expanduser().glob("*/ARCHIVED")):
            restore(args.out.expanduser() / source.parent.name, source.parent)
    print(summary(args))
    if args.plots:
        for path in plot(args, args.plots):
            log(f"wrote {path}")


if __name__ == "__main__":
    main()
