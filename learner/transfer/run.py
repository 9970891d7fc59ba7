"""`maro transfer`: an adapter against the frozen base (or another adapter) on held-out items.

Both sides answer the same items, greedy and sampled, through the local model server (started
here, the adapters linked in as pinned versions) or any running OpenAI-compatible server (vLLM
on a GPU machine; adapters are published to it first). Accuracy per suite and per category with
a 95% bootstrap interval over items, and the paired A - B difference with its interval; a JSON
summary and a short table. Every reply is appended to `replies.jsonl` as it comes, and a rerun
with the same run folder asks only what is missing, so large N can be stopped and resumed.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from maro.learner.evaluate import link_adapters
from maro.learner.serving.client import ModelServerConfig
from maro.learner.transfer import arithmetic, instructions

MODES = {"greedy": 0.0, "sampled": 0.7}
MAX_TOKENS = {"if": 200, "math": 160}


class TransferConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_dir: Path = Path("runs/transfer")
    adapter: Path | None = None
    """Side A: an adapter folder (None: the base model)."""
    vs: Path | None = None
    """Side B: an adapter folder (None: the frozen base)."""
    suite: Literal["if", "math", "all"] = "all"
    n: int = Field(200, gt=0, le=20_000)
    """Items per suite."""
    seed: int = Field(1, ge=0)
    """The items' seed; held out from anything trained on (training never sees these suites)."""
    modes: tuple[str, ...] = ("greedy", "sampled")
    model: str = "smollm2"
    model_server: ModelServerConfig | None = None
    """A running OpenAI-compatible server to ask instead of starting the local one."""
    max_tokens: int | None = Field(None, gt=0, le=4096)
    """Reply length (default: 200 tokens for instruction following, 160 for math)."""
    concurrency: int = Field(16, gt=0, le=256)
    bootstrap: int = Field(2000, ge=100, le=100_000)
    dtype: str = "float32"


def suite_items(suite: str, seed: int, n: int) -> list:
    return instructions.items(seed, n) if suite == "if" else arithmetic.items(seed, n)


def suites(config: TransferConfig) -> list[str]:
    return ["if", "math"] if config.suite == "all" else [config.suite]


def end_torn_line(path: Path) -> None:
    """End a JSONL file's torn last line (a killed writer's), so the next appended row stays whole."""
    if path.exists() and path.stat().st_size:
        with path.open("rb+") as f:
            f.seek(-1, 2)
            if f.read(1) != b"\n":
                f.write(b"\n")


def _done(path: Path) -> dict[tuple[str, str, str], dict]:
    found = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue  # a torn last line of a killed run: asked again
            if isinstance(row, dict) and "item" in row and not row.get("error"):  # a failed call is asked again
                found[(row["side"], row["mode"], row["item"])] = row
    return found


async def ask_all(config: TransferConfig, models: dict[str, str], api_base: str, api_key: str | None) -> list[dict]:
    """Every (side, mode, item) reply, resuming from replies.jsonl. A call that fails is no answer: it
    is logged with its error and asked once more; still failing, the run stops (a rerun resumes)."""
    path = config.run_dir / "replies.jsonl"
    done = _done(path)
    jobs = [(side, mode, suite, item) for suite in suites(config) for item in suite_items(suite, config.seed, config.n)
            for side in ("A", "B") for mode in config.modes]
    todo = [job for job in jobs if (job[0], job[1], job[3].id) not in done]
    gate = asyncio.Semaphore(config.concurrency)
    end_torn_line(path)
    with path.open("a", encoding="utf-8") as out:
        async def one(side: str, mode: str, suite: str, item) -> None:
            async with gate:
                reply, error = await _answer(item, models[side], api_base, api_key, MODES[mode],
                                             config.max_tokens or MAX_TOKENS[suite])
            row = {"side": side, "mode": mode, "suite": suite, "item": item.id, "category": item.category,
                   "correct": bool(item.check(reply)) and not error, "reply": reply[:4000], "error": error}
            out.write(json.dumps(row) + "\n")
            out.flush()
            if error:
                failed.append((side, mode, suite, item, error))
            else:
                done[(side, mode, item.id)] = row

        for _ in range(2):
            failed: list[tuple] = []
            await asyncio.gather(*(one(*job) for job in todo))
            todo = [job[:4] for job in failed]
            if not todo:  # the rows of these items only (the folder may hold those of a larger n)
                return [done[(side, mode, item.id)] for side, mode, _, item in jobs]
    raise RuntimeError(f"{len(failed)} calls failed twice (first: {failed[0][4]}); "
                       "nothing was counted for them, run the command again to ask them again")


async def _answer(item, model: str, api_base: str, api_key: str | None, temperature: float,
                  max_tokens: int) -> tuple[str, str]:
    """One item's reply, and the error where the call failed (an empty reply then)."""
    from maro.agents.llm import ModelCallError, ModelSettings, complete

    settings = ModelSettings(model=model, api_base=api_base, api_key=api_key, temperature=temperature,
                             max_tokens=max_tokens, logprobs=False, timeout_s=300.0)
    try:
        return (await complete([{"role": "user", "content": item.prompt}], settings)).text, ""
    except ModelCallError as exc:
        return "", str(exc)[:300]


async def probe_accuracy(model: str, api_base: str, api_key: str | None, *, seed: int = 2, n: int = 50,
                         concurrency: int = 16) -> dict[str, Any]:
    """Greedy accuracy of one served model on `n` items of each suite (the self-play loop's
    transfer probe): `{"if": rate, "math": rate, "items": n}`."""
    gate = asyncio.Semaphore(concurrency)

    async def one(suite: str, item) -> bool:
        async with gate:
            reply, _ = await _answer(item, model, api_base, api_key, 0.0, MAX_TOKENS[suite])
        return item.check(reply)

    out: dict[str, Any] = {"items": n}
    for suite in ("if", "math"):
        results = await asyncio.gather(*(one(suite, item) for item in suite_items(suite, seed, n)))
        out[suite] = sum(results) / n
    return out


def summarise(rows: list[dict], reps: int) -> dict[str, Any]:
    """Accuracy of A and B and the paired A - B per suite, mode and category, with 95% intervals
    from a bootstrap over items."""
    from maro.learner.evaluate import bootstrap_ci

    by: dict[tuple, dict[str, dict[str, float]]] = defaultdict(lambda: {"A": {}, "B": {}})
    for row in rows:
        for category in ("all", row["category"]):
            by[(row["suite"], row["mode"], category)][row["side"]][row["item"]] = float(row["correct"])
    out: dict[str, Any] = {}
    for (suite, mode, category), sides in sorted(by.items()):
        shared = sorted(set(sides["A"]) & set(sides["B"]))
        if not shared:
            continue
        a = [[sides["A"][i]] for i in shared]
        b = [[sides["B"][i]] for i in shared]
        diff = [[sides["A"][i] - sides["B"][i]] for i in shared]
        entry = {"items": len(shared)}
        for name, values in (("A", a), ("B", b), ("a_minus_b", diff)):
            mean, lo, hi = bootstrap_ci(values, reps)
            entry[name] = {"mean": mean, "ci": [lo, hi]}
        out.setdefault(suite, {}).setdefault(mode, {})[category] = entry
    return out


def table(result: dict[str, Any]):
    from rich.table import Table

    t = Table(title=f"transfer: A = {result['a']}, B = {result['b']}")
    for column in ("suite", "mode", "category", "items", "A", "B", "A - B [95% CI]"):
        t.add_column(column)
    for suite, modes in result["suites"].items():
        for mode, categories in modes.items():
            for category, e in categories.items():
                d = e["a_minus_b"]
                t.add_row(suite, mode, category, str(e["items"]), f"{100 * e['A']['mean']:.1f}%",
                          f"{100 * e['B']['mean']:.1f}%",
                          f"{100 * d['mean']:+.1f} [{100 * d['ci'][0]:+.1f}, {100 * d['ci'][1]:+.1f}]")
    return t


async def run_transfer(config: TransferConfig, console=None) -> dict[str, Any]:
    from rich.console import Console

    from maro.learner.localmodel import resolve_model
    from maro.learner.serving.process import ModelServerProcess

    console = console or Console()
    started = time.time()
    config.run_dir.mkdir(parents=True, exist_ok=True)
    (config.run_dir / "config.json").write_text(config.model_dump_json(indent=2))
    versions = link_adapters(config.run_dir / "adapters", config.adapter, config.vs)
    if versions["A"] is None and versions["B"] is None:
        raise ValueError("A and B are both the base model; name an --adapter or a --vs")
    if config.model_server is None:
        server = ModelServerProcess(resolve_model(config.model), config.run_dir / "adapters",
                                    config.run_dir / "model_server.log", dtype=config.dtype)
        serving = server.config
    else:
        server, serving = None, config.model_server
        for side, path in (("A", config.adapter), ("B", config.vs)):
            if versions[side]:
                serving.publish_adapter(versions[side], Path(path))
    try:
        if server is not None:  # inside the try: a run stopped while the server starts stops it too
            await asyncio.to_thread(server.start)
        models = {side: serving.litellm_model(v or "base") for side, v in versions.items()}
        rows = await ask_all(config, models, serving.api_base(), serving.api_key)
    finally:
        if server is not None:
            server.stop()
    result = {"a": str(config.adapter or "base"), "b": str(config.vs or "base"), "seed": config.seed,
              "n": config.n, "suites": summarise(rows, config.bootstrap), "seconds": time.time() - started}
    (config.run_dir / "transfer.json").write_text(json.dumps(result, indent=2))
    console.print(table(result))
    return result
