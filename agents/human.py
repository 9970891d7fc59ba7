"""A plain-text terminal client: a person plays one seat against bots or models."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TextIO

from maro.agents.bots import bot_names, default_bot
from maro.agents.client import KEY_ENV, SeatResult, create_match, open_channel, play_seat
from maro.agents.llm import ModelSettings, endpoint_problem
from maro.agents.seats import ServerSeats
from maro.arena.engine import GameError, InvalidAction, seating
from maro.arena.match.messages import Submission, TurnPrompt
from maro.arena.present import check_line, view_lines
from maro.arena.transport.grpc.server import ArenaConfig, ArenaServer

ReadLine = Callable[[str], Awaitable[str]]

AGENT_GRACE_S = 10.0
"""How long the match's end waits for model seats still finishing a call."""

VS_HELP = ("the other seats: a bot name; a model name of the registry (`maro agent models`), played by "
           "the LangGraph agent in this process; or model:NAME, a model seat the arena runs (a name of its "
           "registry). Default: the game's bot")


async def read_stdin(prompt: str) -> str:
    """One line from stdin without blocking the event loop (the gRPC stream keeps running)."""
    return await asyncio.to_thread(input, prompt)


class HumanPlayer:
    """A Player that shows each turn on a terminal and reads the person's action, checked locally."""

    def __init__(self, game_id: str, *, seat: int | None = None, out: TextIO | None = None,
                 read_line: ReadLine = read_stdin, clock: Callable[[], float] = time.time):
        self.game_id = game_id
        self.seat = seat
        self.out = out or sys.stdout
        self.read_line = read_line
        self.clock = clock

    def observe(self, message) -> None:
        """Events between turns (the own move's echo, others' moves, the final showdown)."""
        observation = getattr(message, "observation", message)
        events = getattr(observation, "events", ()) if observation is not None else ()
        for event in events:
            self.say(f"  * {event}")

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def screen(self, prompt: TurnPrompt) -> list[str]:
        obs = prompt.observation
        who = f"seat {self.seat}, " if self.seat is not None else ""
        lines = ["", f"=== {self.game_id} | turn {prompt.turn} | you are {who}{obs.role} ==="]
        facts = view_lines(obs.view)
        if facts:
            lines += ["Your facts:", *facts]
        if obs.events:
            lines += ["New events:", *(f"  - {e}" for e in obs.events)]
        seconds = max(0, int(prompt.deadline_unix_ms / 1000 - self.clock()))
        lines += [
            f"Your turn ({obs.role}).",
            f"Legal actions: {'  '.join(prompt.legal_actions) or '-'}",
            f"Format: {prompt.action_format}",
            f"Time left: {seconds} s (attempts left after this one: {prompt.attempts_left})",
        ]
        return lines

    async def act(self, prompt: TurnPrompt, rejection: str | None) -> Submission:
        if rejection:
            self.say(f"Arena rejected your action: {rejection}")
        for line in self.screen(prompt):
            self.say(line)
        while True:
            typed = await self.read_line("> ")
            try:
                action = check_line(self.game_id, prompt.observation.view, typed)
            except InvalidAction as exc:
                self.say(f"Not valid: {exc.reason}")
                self.say(f"Try again ({prompt.action_format}).")
                continue
            self.say(f"Sending {action}")
            return Submission(prompt.turn, action)


def seat_plan(vs: str) -> dict[str, Any]:
    """A bot name, or `model:NAME` (a model of the arena's registry), as a CreateMatch seat."""
    if not vs.startswith("model:"):
        return {"kind": "bot", "bot": vs, "name": vs}
    model = vs.removeprefix("model:")
    return {"kind": "model", "model": model, "name": model}


class PlayError(ValueError):
    """`--vs` names nothing this client can seat; the message lists what it can."""


def opponents(game_id: str, vs: str | None, registry: str | Path | None = None
              ) -> tuple[dict[str, Any], ModelSettings | None]:
    """The other seats of a new match: a scripted bot, a model seat the arena runs
    (`model:NAME`, a name of the arena's registry), or a model of the registry, played by the LangGraph agent in this
    process (its settings are returned; its key stays in this process's environment)."""
    if vs is None:
        return seat_plan(default_bot(game_id)), None
    if vs.startswith("model:") or vs in bot_names():
        return seat_plan(vs), None
    from maro.agents.registry import ModelRegistry, RegistryError

    try:
        settings = ModelRegistry.load(registry).settings(vs)
    except RegistryError as exc:
        bots = ", ".join(bot_names(game_id)) or "none"
        raise PlayError(f"--vs {vs!r} is not a bot of {game_id} ({bots}) nor a model: {exc}") from None
    problem = endpoint_problem(settings)
    if problem:
        raise PlayError(f"model {vs!r}: {problem}")
    return {"kind": "remote", "name": vs}, settings


def outcome_lines(result: SeatResult, roles: list[str]) -> list[str]:
    lines = ["", f"=== match over: {result.reason or 'finished'} ==="]
    for seat, outcome in enumerate(result.outcomes):
        you = " (you)" if seat == result.seat else ""
        role = roles[seat] if seat < len(roles) and roles[seat] else ""
        lines.append(f"  seat {seat}{you}{' ' + role if role else ''}: outcome {outcome:+.3f}")
    if any(roles):
        lines.append("Roles: " + ", ".join(f"seat {s}={r}" for s, r in enumerate(roles)))
    return lines


async def play_human(address: str | None, game_id: str, vs: str | None, *, seed: int = 0,
                     params: dict | None = None, seat: int | None = None, match_id: str | None = None,
                     token: str | None = None, name: str = "human", out: TextIO | None = None,
                     read_line: ReadLine = read_stdin, db: str | None = None,
                     registry: str | Path | None = None, players: int | None = None,
                     key: str | None = None) -> SeatResult:
    """Play one seat from the terminal. Without `address`, an arena runs in this process; with
    `match_id` and `token`, join that match; else create one of `players` seats (default: what
    the game's parameters give) with every other seat `vs` (see `opponents`). `key` is sent to an
    arena started with a key file."""
    player_out = out or sys.stdout
    if not (match_id and token):
        try:
            params, count = seating(game_id, params, players)
        except (ValueError, GameError) as exc:
            raise PlayError(str(exc)) from None
        if seat is not None and not 0 <= seat < count:
            raise PlayError(f"--seat {seat}: a new {game_id} match has seats 0-{count - 1}")
    other, settings = (None, None) if match_id and token else await asyncio.to_thread(opponents, game_id, vs, registry)
    server = None
    tmp = None
    agents: list[asyncio.Task] = []
    channel = None
    try:
        if address is None:
            if db is None:
                tmp = tempfile.TemporaryDirectory(prefix="maro-play-")
                db = str(Path(tmp.name) / "play.sqlite")
            server = ArenaServer(ArenaConfig(port=0, db=db), seats=ServerSeats(_arena_models(other, registry)))
            await server.start()
            address = server.address
        channel = open_channel(address, key=key)
        if match_id and token:
            own = seat
        else:
            own = 0 if seat is None else seat
            seats = [{"kind": "remote", "name": name} if s == own else dict(other) for s in range(count)]
            match_id, tokens = await create_match(channel, game_id, seed, seats, params)
            token = tokens[own]
            if settings is not None:
                agents = [asyncio.create_task(_agent_seat(channel, match_id, tokens[s], game_id, settings, s, vs,
                                                          player_out)) for s in range(count) if s != own]
        print(f"Match {match_id} ({game_id}) on {address}", file=player_out, flush=True)
        player = HumanPlayer(game_id, seat=own, out=out, read_line=read_line)
        result = await play_seat(channel, match_id, token, player, name=name,
                                 connect=lambda other: open_channel(other, key=key))  # another replica's match
        if agents:  # they end with the match; a model call still running is not waited for long
            await asyncio.wait(agents, timeout=AGENT_GRACE_S)
        roles = [r if r or i != result.seat else result.role for i, r in enumerate(result.roles)]
        for line in outcome_lines(result, roles):
            print(line, file=player_out, flush=True)
        return result
    finally:
        for task in agents:
            task.cancel()
        if channel is not None:
            await channel.close()
        if server is not None:
            await server.stop()
        if tmp is not None:
            tmp.cleanup()


def _arena_models(other: dict[str, Any] | None, registry: str | Path | None):
    """The in-process arena's registry, for a `model:NAME` seat (the same lookup as --vs NAME,
    built-in names included); None for bots."""
    if other is None or other.get("kind") != "model":
        return None
    from maro.agents.registry import ModelRegistry, RegistryError

    try:
        models = ModelRegistry.load(registry)
        if not models.knows(other["model"]):
            raise PlayError(f"model:{other['model']}: not a model of the registry ({', '.join(models.names())})")
        models.settings(other["model"])  # a missing key: say so here, not as the arena's refusal
    except RegistryError as exc:
        raise PlayError(str(exc)) from None
    return models


async def _agent_seat(channel, match_id: str, token: str, game_id: str, settings: ModelSettings, seat: int,
                      name: str, out: TextIO) -> None:
    """One opponent seat played by the LangGraph agent; a model that fails for good (a wrong key,
    an unknown model) is reported and its seat left to the arena's deadlines and fallbacks."""
    from maro.agents.graph import AgentContext, AgentPlayer

    player = AgentPlayer(game_id, AgentContext(settings=settings))
    try:
        await play_seat(channel, match_id, token, player, name=name)
    except Exception as exc:  # noqa: BLE001 - the person's match goes on; say why the seat went quiet
        print(f"(seat {seat}, {name}, stopped: {exc}; the arena plays its fallbacks)", file=out, flush=True)
        return
    if player.usage.errors:
        print(f"(seat {seat}, {name}: {player.usage.errors} of {player.usage.calls} model calls failed; last: "
              f"{player.usage.error_messages[-1]})", file=out, flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m maro.agents.human", description=__doc__)
    parser.add_argument("game_id")
    parser.add_argument("--vs", default=None, help=VS_HELP)
    parser.add_argument("--registry", default=None, help="model registry file (default: $MARO_MODELS, "
                                                        "./maro-models.toml, else the built-in names)")
    parser.add_argument("--address", default=None, help="arena host:port (default: one in this process)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--params", default=None, help="game parameters as JSON")
    parser.add_argument("--seat", type=int, default=None)
    parser.add_argument("--match-id", default=None)
    parser.add_argument("--token", default=None)
    parser.add_argument("--name", default="human")
    parser.add_argument("--players", type=int, default=None, help="seats of a new match (default: the game's)")
    parser.add_argument("--key", default=None, help="arena key (default $MARO_ARENA_KEY)")
    args = parser.parse_args(argv)
    try:
        asyncio.run(play_human(args.address, args.game_id, args.vs, seed=args.seed,
                               params=json.loads(args.params) if args.params else None, seat=args.seat,
                               match_id=args.match_id, token=args.token, name=args.name, registry=args.registry,
                               players=args.players, key=args.key or os.environ.get(KEY_ENV)))
    except PlayError as exc:
        raise SystemExit(f"error: {exc}") from None
    except (KeyboardInterrupt, EOFError):
        print("\nbye", flush=True)


if __name__ == "__main__":
    main()
