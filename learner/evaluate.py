"""`maro eval`: an adapter against another (the frozen base by default) on held-out seeds, seats swapped.

Every seed is played twice: A in the even seats and B in the odd ones, then the other way
round, so with seeded dealing each side plays the same roles against the same deals. Results
per game and role: mean outcome and win rate of each side with 95% bootstrap confidence
intervals (resampling seeds, so the two swapped matches of a seed stay together), and the
paired difference A - B per seed with its interval: a claim that A is better is made only when
that interval excludes 0.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console
from rich.table import Table

from maro.arena.engine import game_class, seating
from maro.arena.match.runner import RunnerConfig
from maro.arena.store.matches import MatchStore
from maro.learner.rollouts import MatchPlan, play_batch
from maro.learner.serving.client import ModelServerConfig
from maro.learner.session import play_session, progress
from maro.learner.stats import seat_stats

HELD_OUT_SEED = 1_000_000
"""Evaluation seeds start here; self-play training seeds stay far below it."""


class EvalConfig(BaseModel):
    """One evaluation; stored as run_dir/config.json next to its match store and eval.json."""

    model_config = ConfigDict(extra="forbid")

    run_dir: Path = Path("runs/eval")
    adapter: Path | None = None
    """Side A: a PEFT adapter folder (an adapters/vNNNN of a run); None is the base model."""
    vs: Path | None = None
    """Side B: another adapter folder; None is the frozen base model."""
    vs_bot: bool = False
    """Side B is the game's scripted bot instead (then `vs` stays empty)."""
    games: list[str] = Field(default_factory=lambda: ["bargaining-v1"], min_length=1)
    players: dict[str, int] = Field(default_factory=dict)
    matches: int = Field(40, ge=2)
    """Matches per game: matches // 2 seeds, each played with seats swapped."""
    seed: int = HELD_OUT_SEED
    model: str = "smollm2"
    temperature: float = Field(0.7, gt=0)
    max_tokens: int = Field(24, gt=0)
    concurrency: int = Field(16, ge=1, le=64)
    stop_after_action: bool = False
    """End each model reply at its action's closing bracket (as a run with --stop-after-action played)."""
    bootstrap: int = Field(2000, ge=100)
    dtype: Literal["float32", "bfloat16", "auto"] = "auto"
    """The local model server's weights, as in `maro selfplay` (bfloat16 where native)."""
    model_server: ModelServerConfig | None = None
    turn_timeout_s: float = Field(600.0, gt=0)
    """The arena's per-attempt deadline: generous, since every seat here is our own model or a bot
    and a busy CPU server can queue a reply for minutes."""


def eval_plans(game_id: str, players: int, seeds: int, first_seed: int, a: str, b: str | None) -> list[MatchPlan]:
    """Two matches per seed: A in the even seats then in the odd ones; B (None: the game's bot) in the rest."""
    plans = []
    for k in range(seeds):
        for swap in (0, 1):
            if b is None:
                mine = tuple(s for s in range(players) if (s + swap) % 2 == 0)
                plans.append(MatchPlan(game_id, first_seed + k, mine, players, tuple(a for _ in mine)))
                continue
            models = tuple(a if (s + swap) % 2 == 0 else b for s in range(players))
            plans.append(MatchPlan(game_id, first_seed + k, tuple(range(players)), players, models))
    return plans


def bootstrap_ci(clusters: Sequence[Sequence[float]], reps: int, seed: int = 0) -> tuple[float, float, float]:
    """Mean of all values and its 95% percentile interval, resampling whole clusters (seeds)."""
    clusters = [np.asarray(c, dtype=float) for c in clusters if len(c)]
    if not clusters:
        return float("nan"), float("nan"), float("nan")
    sums = np.array([c.sum() for c in clusters])
    counts = np.array([len(c) for c in clusters])
    mean = float(sums.sum() / counts.sum())
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(clusters), size=(reps, len(clusters)))
    means = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return mean, float(lo), float(hi)


def summarise(matches: Sequence, side_names: dict[str, str], reps: int) -> dict[str, Any]:
    """Per game, per side and role: n, mean outcome and win rate with CIs; paired A - B per seed."""
    games: dict[str, Any] = {}
    by_game: dict[str, list] = defaultdict(list)
    for m in matches:
        if m.status == "finished" and m.outcome is not None:
            by_game[m.game_id].append(m)
    for game_id, ms in sorted(by_game.items()):
        threshold = game_class(game_id).spec.win_threshold
        outcome: dict[tuple[str, str], dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
        paired: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for m in ms:
            for s in m.seats:
                side = side_names.get(s.name)
                if side is None:
                    continue
                z = m.outcome[s.seat]
                for role in (s.role, "all"):
                    outcome[(side, role)][m.seed].append(z)
                paired[m.seed][side].append(z)
        rows = []
        for (side, role), per_seed in sorted(outcome.items()):
            values = list(per_seed.values())
            mean, lo, hi = bootstrap_ci(values, reps)
            win, wlo, whi = bootstrap_ci([[float(z > threshold) for z in v] for v in values], reps)
            rows.append({"side": side, "role": role, "n": sum(map(len, values)), "mean": mean, "ci": [lo, hi],
                         "win_rate": win, "win_ci": [wlo, whi]})
        diffs = [[float(np.mean(d["A"]) - np.mean(d["B"]))] for d in paired.values() if d.get("A") and d.get("B")]
        dmean, dlo, dhi = bootstrap_ci(diffs, reps)
        games[game_id] = {"matches": len(ms), "seeds": len(paired), "rows": rows,
                          "a_minus_b": {"mean": dmean, "ci": [dlo, dhi], "seeds": len(diffs)}}
    return games


def link_adapters(root: Path, adapter: Path | None, vs: Path | None) -> dict[str, str | None]:
    """Link the two adapters into a fresh folder as v0001 (A) and v0002 (B) for one model server;
    a side without one (the base model) gets None."""
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    versions: dict[str, str | None] = {}
    for side, path, version in (("A", adapter, "v0001"), ("B", vs, "v0002")):
        if path is None:
            versions[side] = None
            continue
        path = Path(path).resolve()
        if not (path / "adapter_config.json").exists():
            raise FileNotFoundError(f"{path} is not a PEFT adapter folder (no adapter_config.json)")
        os.symlink(path, root / version, target_is_directory=True)
        versions[side] = version
    return versions


def _sides(config: EvalConfig, versions: dict[str, str | None], server: ModelServerConfig) -> dict[str, str | None]:
    """The LiteLLM model of each side (B is None against the bot), publishing pinned adapters to a
    running server first."""
    for side, path in (("A", config.adapter), ("B", config.vs)):
        if versions[side] and config.model_server is not None:
            server.publish_adapter(versions[side], Path(path))
    models = {side: server.litellm_model(v or "base") for side, v in versions.items()}
    if config.vs_bot:
        if config.vs is not None:
            raise ValueError("give --vs or --vs-bot, not both")
        models["B"] = None
    elif models["A"] == models["B"]:
        raise ValueError("A and B are the same model; name an --adapter or a --vs")
    return models


async def run_eval(config: EvalConfig, console: Console | None = None) -> dict[str, Any]:
    """Play the held-out matches and return (and store in run_dir/eval.json) the summary."""
    from maro.learner.localmodel import resolve_model

    console = console or Console()
    started = time.time()
    run_dir = config.run_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(config.model_dump_json(indent=2))
    versions = link_adapters(run_dir / "adapters", config.adapter, config.vs)
    model_dir = resolve_model(config.model)
    store = MatchStore(run_dir / "matches.sqlite")
    runner = RunnerConfig(turn_timeout_s=config.turn_timeout_s)
    async with play_session(run_dir, model_dir, store, run_dir / "adapters", model_server=config.model_server,
                            runner=runner, dtype=config.dtype, console=console) as session:
        models = _sides(config, versions, session.server)
        settings = session.settings(config.temperature, config.max_tokens, model=models["A"])
        match_ids: list[str] = []
        for game_id in config.games:
            players = seating(game_id, None, config.players.get(game_id, game_class(game_id).spec.min_players))[1]
            plans = eval_plans(game_id, players, config.matches // 2, config.seed, models["A"], models["B"])
            with progress(game_id, console) as bar:
                task = bar.add_task(game_id, total=len(plans))
                match_ids += await play_batch(session.address, plans, settings, concurrency=config.concurrency,
                                              stop_after_action=config.stop_after_action,
                                              on_done=lambda _m: bar.advance(task))
    matches = [store.get_match(i, with_events=False) for i in match_ids]
    names = {f"model:{models['A']}": "A"}
    if config.vs_bot:
        names |= {s.name: "B" for m in matches for s in m.seats if s.kind == "bot"}
    else:
        names[f"model:{models['B']}"] = "B"
    result = {
        "a": str(config.adapter or "base"), "b": "bot" if config.vs_bot else str(config.vs or "base"),
        "games": summarise(matches, names, config.bootstrap),
        "valid_rate": _valid_rates(store, match_ids, names),
        "seconds": time.time() - started,
    }
    (run_dir / "eval.json").write_text(json.dumps(result, indent=2))
    console.print(eval_table(result))
    return result


def _valid_rates(store: MatchStore, match_ids: Sequence[str], names: dict[str, str]) -> dict[str, float]:
    _matches, sides = seat_stats(store, match_ids, lambda _m, s: names.get(s.name))
    return {side: stats.valid_rate for side, stats in sorted(sides.items()) if stats.attempts}


def _ci(value: float, ci: Sequence[float], pct: bool = False) -> str:
    if pct:
        return f"{value:.0%} [{ci[0]:.0%}, {ci[1]:.0%}]"
    return f"{value:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]"


def eval_table(result: dict[str, Any]) -> Table:
    table = Table(title=f"A = {result['a']}  vs  B = {result['b']}")
    for col in ("game", "side", "role", "seats", "mean outcome [95% CI]", "win rate [95% CI]"):
        table.add_column(col)
    for game_id, g in result["games"].items():
        for row in g["rows"]:
            table.add_row(game_id, row["side"], row["role"], str(row["n"]), _ci(row["mean"], row["ci"]),
                          _ci(row["win_rate"], row["win_ci"], pct=True))
        d = g["a_minus_b"]
        table.add_row(game_id, "A - B", "paired per seed", str(d["seeds"]), _ci(d["mean"], d["ci"]), "")
    return table


def markdown_rows(label: str, result: dict[str, Any]) -> list[str]:
    """Lines of a markdown table (variant, game, role, side A and B outcomes, A - B) for docs."""
    lines = []
    for game_id, g in result["games"].items():
        rows = {(r["side"], r["role"]): r for r in g["rows"]}
        for role in sorted({r for _, r in rows}):
            a, b = rows.get(("A", role)), rows.get(("B", role))
            if not a or not b:
                continue
            lines.append(f"| {label} | {game_id} | {role} | {a['n']} | {_ci(a['mean'], a['ci'])} | "
                         f"{_ci(a['win_rate'], a['win_ci'], True)} | {_ci(b['mean'], b['ci'])} |")
        d = g["a_minus_b"]
        lines.append(f"| {label} | {game_id} | **A - B (paired)** | {d['seeds']} seeds | {_ci(d['mean'], d['ci'])} | | |")
    return lines
