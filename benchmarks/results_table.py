"""Collect an experiment folder (benchmarks/experiment.sh) into docs: a markdown table and PNG plots.

    python benchmarks/results_table.py runs/experiment --plots docs/results

Prints the markdown table of every `<game>-<variant>/eval/eval.json` (side A = the variant's
final adapter, side B = the frozen base) with training matches and wall time, and writes one
figure per game comparing the variants over iterations.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from maro.learner.evaluate import markdown_rows  # noqa: E402
from maro.learner.loop import read_metrics  # noqa: E402

HEADER = ("| variant | game | role | seats (A) | A: mean outcome [95% CI] | A: win rate [95% CI] | "
          "B (base): mean outcome [95% CI] |\n|---|---|---|---|---|---|---|")


def runs(root: Path) -> list[tuple[str, str, Path]]:
    out = []
    for d in sorted(root.iterdir()):
        config = d / "config.json"
        if d.is_dir() and config.exists():
            c = json.loads(config.read_text())
            out.append((c["games"][0], c["learner"]["maro"]["variant"], d))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path)
    parser.add_argument("--plots", type=Path, default=None, help="Folder for the comparison PNGs.")
    parser.add_argument("--seeds", type=int, default=None,
                        help="Also recompute every evaluation on its first N seeds only (a common footing).")
    args = parser.parse_args()
    found = runs(args.root)
    print("training runs:\n")
    print("| game | variant | iterations | training matches | behaviors trained | training wall time | "
          "eval matches | eval wall time |\n|---|---|---|---|---|---|---|---|")
    for game, variant, d in found:
        lines = read_metrics(d)
        state = json.loads((d / "state.json").read_text())
        ev = d / "eval" / "eval.json"
        result = json.loads(ev.read_text()) if ev.exists() else None
        behaviors = sum(int((line.get("update") or {}).get("maro/behaviors", 0)) for line in lines)
        ev_matches = str(result["games"][game]["matches"]) if result else "-"
        ev_wall = f"{result['seconds'] / 60:.1f} min" if result else "-"
        print(f"| {game} | {variant} | {len(lines)} | {sum(line['matches'] for line in lines)} | {behaviors} | "
              f"{state['seconds'] / 60:.1f} min | {ev_matches} | {ev_wall} |")
    print("\nevaluation against the frozen base (held-out seeds, seats swapped):\n")
    print(HEADER)
    for game, variant, d in found:
        ev = d / "eval" / "eval.json"
        if ev.exists():
            print("\n".join(markdown_rows(variant, json.loads(ev.read_text()))))
    if args.seeds:
        print(f"\nthe same, on the first {args.seeds} held-out seeds of every evaluation:\n")
        print(HEADER)
        for game, variant, d in found:
            if (d / "eval" / "eval.json").exists():
                print("\n".join(markdown_rows(variant, first_seeds(d / "eval", args.seeds))))
    print("\nvalid-action rate in evaluation (A = variant, B = base):\n")
    print("| game | variant | A | B |\n|---|---|---|---|")
    for game, variant, d in found:
        ev = d / "eval" / "eval.json"
        if ev.exists():
            v = json.loads(ev.read_text())["valid_rate"]
            print(f"| {game} | {variant} | {v.get('A', float('nan')):.1%} | {v.get('B', float('nan')):.1%} |")
    if args.plots:
        plot(found, args.plots)


def first_seeds(eval_dir: Path, seeds: int) -> dict:
    """An evaluation's summary recomputed from its match store on its first `seeds` seeds."""
    from maro.arena.store import MatchStore
    from maro.learner.evaluate import summarise

    config = json.loads((eval_dir / "config.json").read_text())
    store = MatchStore(eval_dir / "matches.sqlite")
    matches = [store.get_match(m.match_id, with_events=False) for m in store.list_matches()]
    matches = [m for m in matches if m.seed < config["seed"] + seeds]
    names = {s.name: ("A" if "@v0001" in s.name else "B") for m in matches for s in m.seats if s.name.startswith("model:")}
    return {"games": summarise(matches, names, 2000)}


def plot(found: list[tuple[str, str, Path]], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for game in sorted({g for g, _, _ in found}):
        fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(13, 3.6))
        for g, variant, d in found:
            if g != game:
                continue
            lines = read_metrics(d)
            its = [line["iteration"] for line in lines]
            ax1.plot(its, [line["valid_rate"] for line in lines], marker="o", label=variant)
            roles = sorted({k for line in lines for k in line["outcome"] if k.count("/") == 1})
            for role in roles:
                ax2.plot(its, [line["outcome"].get(role) for line in lines], marker="o",
                         label=f"{variant} {role.split('/')[1]}")
            ax3.plot(its, [(line.get("update") or {}).get("maro/loss") for line in lines], marker="o", label=variant)
        for ax, title in ((ax1, "valid-action rate"), (ax2, "mean outcome per role (training matches)"),
                          (ax3, "update loss")):
            ax.set_title(f"{game}: {title}", fontsize=9)
            ax.set_xlabel("iteration")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / f"{game}.png", dpi=110)
        plt.close(fig)
        print(f"\nwrote {out / f'{game}.png'}")


if __name__ == "__main__":
    main()
