"""Valid-action rate of the local model per game, with the repair loop and without it.

    python benchmarks/valid_actions.py [--games G ...] [--matches 20] [--concurrency 8]
                                       [--model smollm2] [--repair-budget 2] [--max-tokens 48]
                                       [--seed 0] [--out runs/valid_actions]

For every registered game (or --games), plays --matches matches through a real arena on
loopback: the local model (the LangGraph agent over LiteLLM, `maro model serve` started here as
a child process, base model) in one seat, rotated over the seats, the game's scripted bot in the
others. Twice, on the same seeds:

  repair     the agent repairs unparseable replies locally (--repair-budget), and the arena
             rejects with the reason and re-prompts (its default of 2 retries) before the fallback;
  no repair  retry_budget 0 and an arena with max_retries 0: the first reply is final.

Per game and condition: matches, model turns, model calls, first-try valid (turns whose first
reply passed the game's check as written), valid after repair (turns that ended with an accepted
action of the model's own, not a fallback), and fallbacks (turns the arena finished with the
game's declared fallback: its default action, or a forfeit). Results also go to OUT/summary.json
and the matches to OUT/<condition>.sqlite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import grpc
from rich.console import Console
from rich.table import Table

from maro.agents.client import create_match, play_seat
from maro.agents.graph import AgentContext, AgentPlayer
from maro.agents.llm import ModelSettings
from maro.agents.seats import ServerSeats
from maro.arena.engine import game_ids, make_game
from maro.arena.match.runner import RunnerConfig
from maro.arena.transport.grpc.server import ArenaConfig, ArenaServer


@dataclass
class Tally:
    matches: int = 0
    turns: int = 0
    calls: int = 0
    first_try_valid: int = 0
    valid_after_repair: int = 0
    fallbacks: int = 0
    seconds: float = 0.0

    def rate(self, count: int) -> str:
        return f"{count / self.turns:.1%}" if self.turns else "-"


async def play_game(arena: ArenaServer, game_id: str, matches: int, seed: int, context: AgentContext,
                    concurrency: int, console: Console) -> Tally:
    """`matches` matches of `game_id`, the model's seat rotated; tallies from the agent and the store."""
    from maro.agents.bots import default_bot

    n, bot, limit = make_game(game_id).num_players(), default_bot(game_id), asyncio.Semaphore(concurrency)
    tally, started = Tally(), time.time()

    async def one(channel: grpc.aio.Channel, i: int) -> None:
        seat = i % n
        seats = [{"kind": "remote", "name": "model"} if s == seat else {"kind": "bot", "bot": bot} for s in range(n)]
        async with limit:
            match_id, tokens = await create_match(channel, game_id, seed + i, seats)
            player = AgentPlayer(game_id, context)
            try:
                await play_seat(channel, match_id, tokens[seat], player)
            except (grpc.aio.AioRpcError, ConnectionError) as exc:  # counted from the store all the same
                console.print(f"[yellow]{game_id} match {match_id}: the seat's stream failed: {exc}")
            for _ in range(100):  # the arena records the end a moment after the last message
                if arena.store.get_match(match_id, with_events=False).status != "running":
                    break
                await asyncio.sleep(0.05)
        record = arena.store.get_match(match_id, with_events=False)
        mine = [b for b in arena.store.behaviors([match_id]) if b.seat == seat]
        tally.matches += 1
        tally.turns += player.stats.turns
        tally.calls += player.usage.calls
        tally.first_try_valid += player.stats.first_try_valid
        tally.valid_after_repair += len({b.turn for b in mine if b.accepted and not b.fallback})
        tally.fallbacks += len({b.turn for b in mine if b.fallback})
        tally.fallbacks += record.end_reason == f"forfeit by seat {seat}"

    async with grpc.aio.insecure_channel(arena.address) as channel:
        await asyncio.gather(*(one(channel, i) for i in range(matches)))
    tally.seconds = time.time() - started
    return tally


def table(game_id: str, results: dict[str, Tally]) -> Table:
    out = Table(title=game_id)
    out.add_column("")
    for condition in results:
        out.add_column(condition, justify="right")
    rows = [
        ("matches", lambda t: str(t.matches)),
        ("model turns", lambda t: str(t.turns)),
        ("model calls (attempts)", lambda t: str(t.calls)),
        ("first-try valid", lambda t: t.rate(t.first_try_valid)),
        ("valid after repair", lambda t: t.rate(t.valid_after_repair)),
        ("fallbacks", lambda t: f"{t.fallbacks} ({t.rate(t.fallbacks)})"),
        ("seconds", lambda t: f"{t.seconds:.0f}"),
    ]
    for label, cell in rows:
        out.add_row(label, *(cell(t) for t in results.values()))
    return out


async def measure(args, settings: ModelSettings, console: Console) -> dict:
    conditions = {
        "repair": (args.repair_budget, RunnerConfig().max_retries),
        "no repair": (0, 0),
    }
    conditions = {k: v for k, v in conditions.items() if k.replace(" ", "-") in args.conditions}
    summary: dict[str, dict[str, dict]] = {}
    for game_id in args.games:
        results: dict[str, Tally] = {}
        for condition, (budget, arena_retries) in conditions.items():
            db = args.out / f"{condition.replace(' ', '_')}.sqlite"
            # A generous deadline: a busy CPU server can queue a reply for minutes, and a missed
            # deadline would count as the model's fallback.
            runner = RunnerConfig(max_retries=arena_retries, turn_timeout_s=600)
            arena = ArenaServer(ArenaConfig(port=0, db=str(db), runner=runner), seats=ServerSeats())
            await arena.start()
            try:
                context = AgentContext(settings=settings, retry_budget=budget)
                with console.status(f"{game_id}, {condition}: {args.matches} matches"):
                    results[condition] = await play_game(arena, game_id, args.matches, args.seed, context,
                                                         args.concurrency, console)
            finally:
                await arena.stop()
        console.print(table(game_id, results))
        summary[game_id] = {c: asdict(t) for c, t in results.items()}
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", nargs="+", default=None, help="game ids; default: every registered game")
    parser.add_argument("--matches", type=int, default=20, help="matches per game and condition")
    parser.add_argument("--concurrency", type=int, default=8, help="matches played at once (the server batches)")
    parser.add_argument("--model", default="smollm2", help="`smollm2` or a folder with a transformers model")
    parser.add_argument("--repair-budget", type=int, default=2, help="local repairs in the repair condition")
    parser.add_argument("--max-tokens", type=int, default=48, help="reply length limit")
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--seed", type=int, default=0, help="first seed; both conditions use the same seeds")
    parser.add_argument("--conditions", nargs="+", default=["repair", "no-repair"], choices=["repair", "no-repair"],
                        help="`repair` alone also gives the no-repair rate per turn: its first-try valid column")
    parser.add_argument("--out", type=Path, default=Path("runs/valid_actions"))
    args = parser.parse_args()
    args.games = args.games or game_ids()
    unknown = sorted(set(args.games) - set(game_ids()))
    if unknown:
        parser.error(f"unknown games {unknown}; known: {', '.join(game_ids())}")
    args.out.mkdir(parents=True, exist_ok=True)
    for old in args.out.glob("*.sqlite"):  # each run measures its own matches only
        old.unlink()

    from maro.learner.localmodel import resolve_model
    from maro.learner.serving.process import ModelServerProcess

    console = Console()
    with console.status(f"preparing {args.model}"):
        model_dir = resolve_model(args.model)
    (args.out / "adapters").mkdir(exist_ok=True)  # empty: the base model
    server = ModelServerProcess(model_dir, args.out / "adapters", args.out / "model_server.log")
    with console.status("starting the model server"):
        server.start()
    started = time.time()
    try:
        settings = ModelSettings(model=server.config.litellm_model(), api_base=server.config.api_base(),
                                 temperature=args.temperature, max_tokens=args.max_tokens)
        summary = asyncio.run(measure(args, settings, console))
    finally:
        server.stop()
    summary = {"config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
               "seconds": time.time() - started, "games": summary}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    console.print(f"done in {summary['seconds']:.0f}s; {args.out / 'summary.json'}")


if __name__ == "__main__":
    main()
