"""PNG plots of a self-play run from its metrics.jsonl: outcome per role, valid-action rate, loss terms."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers
import matplotlib.pyplot as plt  # noqa: E402

LOSS_TERMS = ("maro/loss", "maro/kl", "entropy", "maro/clip_ratio", "maro/grad_norm", "maro/advantage_abs_mean")


def plot_run(run_dir: Path) -> list[Path]:
    """Write plots/outcome.png, plots/valid_rate.png and plots/loss.png; returns the files written."""
    from maro.learner.runs import read_metrics

    lines = read_metrics(run_dir)
    if not lines:
        return []
    out = Path(run_dir) / "plots"
    out.mkdir(parents=True, exist_ok=True)
    its = [line["iteration"] for line in lines]
    written = []

    fig, ax = plt.subplots(figsize=(7, 4))
    keys = sorted({k for line in lines for k in line.get("outcome", {}) if k.count("/") == 1})
    for key in keys:
        ax.plot(its, [line["outcome"].get(key) for line in lines], marker="o", label=key)
    for key in sorted({k for line in lines for k in line.get("outcome", {}) if k.startswith("vs_bot/")}):
        ax.plot(its, [line["outcome"].get(key) for line in lines], marker="x", linestyle="--", label=key)
    _finish(ax, "mean outcome of the current adapter per role (played during the iteration)", "outcome")
    written.append(_save(fig, out / "outcome.png"))

    if any("probe" in line for line in lines):  # the fixed probe seeds against the bot, from the start
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
        start = next((line["probe_start"] for line in lines if "probe_start" in line), None)
        xs = ([0] if start else []) + [line["iteration"] for line in lines if "probe" in line]
        probes = ([start] if start else []) + [line["probe"] for line in lines if "probe" in line]
        for ax, key, title in ((axes[0], "mean_outcome", "outcome against the bot (probe seeds)"),
                               (axes[1], "valid_rate", "valid-action rate (probe seeds)")):
            ax.plot(xs, [float("nan") if p.get(key) is None else p[key] for p in probes], marker="o")
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("iteration (0: the starting policy)")
            ax.grid(alpha=0.3)
        written.append(_save(fig, out / "probe.png"))

    if any("transfer" in line for line in lines):  # the transfer probe: held-out items, greedy
        fig, ax = plt.subplots(figsize=(7, 4))
        start = next((line["transfer_start"] for line in lines if "transfer_start" in line), None)
        xs = [line["iteration"] for line in lines if "transfer" in line]
        points = [line["transfer"] for line in lines if "transfer" in line]
        if start:
            xs, points = [0, *xs], [start, *points]
        for suite, label in (("if", "instruction following"), ("math", "math")):
            ax.plot(xs, [p.get(suite) for p in points], marker="o", label=label)
        ax.set_ylim(0, 1)
        _finish(ax, "transfer probe: greedy accuracy on held-out items", "accuracy")
        written.append(_save(fig, out / "transfer.png"))

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(its, [line.get("valid_rate") for line in lines], marker="o", label="valid-action rate")
    ax.set_ylim(0, 1)
    _finish(ax, "valid-action rate of the current adapter", "rate")
    written.append(_save(fig, out / "valid_rate.png"))

    fig, axes = plt.subplots(1, len(LOSS_TERMS), figsize=(3.2 * len(LOSS_TERMS), 3.2))
    for ax, term in zip(axes, LOSS_TERMS):
        ax.plot(its, [(line.get("update") or {}).get(term) for line in lines], marker="o")
        ax.set_title(term.split("/", 1)[-1], fontsize=9)
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    written.append(_save(fig, out / "loss.png"))
    return written


def _finish(ax, title: str, ylabel: str) -> None:
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("iteration")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
