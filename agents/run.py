"""`maro agent run`: agents that take open seats through the lobby and play, many at once, with progress."""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from maro.agents.client import ArenaClient, GrpcArenaClient, Player, SeatResult, open_channel
from maro.agents.graph import AgentContext, AgentPlayer, TurnStats
from maro.agents.llm import CompleteFn, ModelCallError, ModelSettings, Usage, complete, endpoint_problem

log = logging.getLogger(__name__)

MAX_AGENT_LINES = 8


class AgentRunConfig(BaseModel):
    """One `maro agent run`."""

    model_config = ConfigDict(extra="forbid")

    arena: str
    """The arena's HOST:PORT."""
    game: str
    model: str | None = None
    """A name in the model registry; None takes the registry's default."""
    registry: Path | None = None
    """The registry file; None looks at $MARO_MODELS, then ./maro-models.toml, then the built-in names."""
    seats: int = Field(1, ge=1)
    """Agents playing at once in this process, each taking one seat after another."""
    matches: int | None = Field(None, ge=1)
    """Stop after this many matches in all (None: until stopped)."""
    match_id: str | None = None
    token: str | None = None
    """With match_id: play that seat of that match, then stop."""
    think: bool = False
    persona: str = ""
    memory_tokens: int = Field(0, ge=0)
    retry_budget: int = Field(1, ge=0)
    name: str = ""
    """The player name the arena records and rates; default `agent:<model>`."""
    tls: bool = False
    key: SecretStr | None = None
    """The arena key (`authorization: Bearer ...`), for arenas started with a key file."""
    poll_s: float = Field(2.0, gt=0)
    """How long one lobby request waits for a seat before asking again (and checking for a stop)."""
    connect_timeout_s: float = Field(10.0, gt=0)

    @model_validator(mode="after")
    def _one_match_or_lobby(self) -> AgentRunConfig:
        if (self.match_id is None) != (self.token is None):
            raise ValueError("--match-id and --token go together")
        if self.match_id is not None and self.seats != 1:
            raise ValueError("a given match and token is one seat: leave --seats at 1")
        return self


class AgentRunError(RuntimeError):
    """A run that cannot go on: the arena is unreachable, the game unknown, the model refuses us."""


@dataclass
class MatchReport:
    """One seat this process played."""

    match_id: str
    seat: int
    role: str
    outcome: float | None
    reason: str
    turns: int
    accepted: int
    rejections: int
    usage: Usage
    stats: TurnStats | None = None


@dataclass
class RunSummary:
    matches: list[MatchReport] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    errors: list[str] = field(default_factory=list)
    """Seats that could not be played to the end (the run went on)."""
    stopped: str = ""
    """Why the run ended: `match count reached`, `stopped`, `interrupted`, `done`."""


class _Tracked:
    """A player whose observations update a progress line."""

    def __init__(self, player: Player, status: Callable[[str], None]):
        self.player, self.status = player, status
        self._observe = getattr(player, "observe", None)

    async def act(self, prompt, rejection):
        self.status(f"turn {prompt.turn}" + (f", repairing: {rejection[:40]}" if rejection else ""))
        return await self.player.act(prompt, rejection)

    def observe(self, message) -> None:
        if self._observe:
            self._observe(message)


class AgentRunner:
    """Runs `config.seats` agents against the arena; `stop()` lets matches in progress finish,
    `interrupt()` (a first and second Ctrl-C) stops, then cancels."""

    def __init__(self, config: AgentRunConfig, settings: ModelSettings, *,
                 complete_fn: CompleteFn = complete, make_player: Callable[[], Player] | None = None,
                 console: Console | None = None):
        self.config, self.settings = config, settings
        self.context = AgentContext(settings=settings, retry_budget=config.retry_budget, complete=complete_fn,
                                    persona=config.persona, think=config.think, memory_tokens=config.memory_tokens)
        self.make_player = make_player or (lambda: AgentPlayer(config.game, self.context))
        self.console = console or Console()
        self.summary = RunSummary()
        self.name = config.name or f"agent:{config.model or settings.model}"
        self._claimed = self._playing = 0
        self._stopping = False
        self._fatal: BaseException | None = None
        self._tasks: list[asyncio.Task] = []
        self._progress: Progress | None = None
        self._overall: TaskID | None = None

    # --- control ----------------------------------------------------------------------------
    def stop(self) -> None:
        """Take no new seats; matches in progress play to their end."""
        self._stopping = True
        self.summary.stopped = self.summary.stopped or "stopped"

    def interrupt(self) -> None:
        """First call: stop(). Second: cancel everything now (the arena's deadlines then apply)."""
        if not self._stopping:
            self.stop()
            in_play = sum(1 for t in self._tasks if not t.done())
            self.console.print(f"[yellow]stopping: finishing the matches in progress ({in_play} agents); "
                               "Ctrl-C again to quit now")
            return
        self.summary.stopped = "interrupted"
        for task in self._tasks:
            task.cancel()

    # --- the run ----------------------------------------------------------------------------
    async def run(self) -> RunSummary:
        connect = functools.partial(open_channel, tls=self.config.tls,
                                    key=self.config.key.get_secret_value() if self.config.key else None)
        async with connect(self.config.arena) as channel, \
                contextlib.aclosing(GrpcArenaClient(channel, connect, self.config.arena)) as client:
            await self._check_arena(client)
            problem = await asyncio.to_thread(endpoint_problem, self.settings)
            if problem:
                raise AgentRunError(f"model {self.config.model or self.settings.model!r}: {problem}")
            columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       TextColumn("{task.fields[info]}"))
            with Progress(*columns, console=self.console, transient=False) as progress:
                self._progress = progress
                self._overall = progress.add_task(f"{self.config.game} · {self.name}", total=self.config.matches,
                                                  info="")
                self._tasks = [asyncio.create_task(self._worker(client, i)) for i in range(self.config.seats)]
                results = await asyncio.gather(*self._tasks, return_exceptions=True)
            for result in results:
                if isinstance(result, Exception):
                    self._fatal = self._fatal or result
        if self._fatal is not None:
            raise self._fatal
        if not self.summary.stopped:
            self.summary.stopped = "match count reached" if self.config.matches else "done"
        self.console.print(summary_table(self.summary, self.config.game))
        return self.summary

    async def _check_arena(self, client: ArenaClient) -> None:
        try:
            hosted = sorted(await client.list_games(timeout=self.config.connect_timeout_s))
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise AgentRunError(f"cannot reach the arena at {self.config.arena} ({exc.code().name}): is "
                                    "`maro arena serve` running there, and is the address HOST:PORT?") from None
            raise AgentRunError(f"the arena at {self.config.arena} refused: {exc.details()}") from None
        if not any(fnmatch.fnmatchcase(self.config.game, pattern) for pattern in hosted):
            raise AgentRunError(f"the arena at {self.config.arena} has no game {self.config.game!r}; "
                                f"it hosts: {', '.join(hosted)}")

    async def _worker(self, client: ArenaClient, index: int) -> None:
        try:
            await self._seat_after_seat(client, index)
        except Exception as exc:  # whatever stops one agent stops the run: the others take no new seats
            self._fatal = self._fatal or exc
            self.stop()
            raise

    async def _seat_after_seat(self, client: ArenaClient, index: int) -> None:
        # One line per agent while they fit on a screen; beyond that the overall line counts them.
        shown = self._progress is not None and self.config.seats <= MAX_AGENT_LINES
        line = self._progress.add_task(f"  agent {index}", total=None, info="starting") if shown else None

        def status(text: str) -> None:
            if line is not None:
                self._progress.update(line, info=text)

        if self.config.match_id is not None:
            self._claimed += 1
            await self._play(client, self.config.match_id, self.config.token, status)
            status("done")
            return
        while self._claim():
            status("waiting for an open seat")
            seat = await self._find(client)
            if seat is None:  # stopped while waiting
                self._claimed -= 1
                break
            match_id, number, token = seat
            status(f"match {match_id[:8]} seat {number}")
            self._playing += 1
            try:
                await self._play(client, match_id, token, status)
            finally:
                self._playing -= 1
        status("stopped" if self._stopping else "done")

    def _claim(self) -> bool:
        if self._stopping or self._fatal is not None:
            return False
        if self.config.matches is not None and self._claimed >= self.config.matches:
            return False
        self._claimed += 1
        return True

    async def _find(self, client: ArenaClient) -> tuple[str, int, str] | None:
        """An open seat from the lobby, asking again every poll_s; None once stopped."""
        while not self._stopping:
            try:
                return await client.find_seat(self.config.game, wait=True, name=self.name,
                                              timeout=self.config.poll_s)
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                    continue
                raise AgentRunError(f"the arena's lobby refused: {exc.code().name}: {exc.details()}") from None
        return None

    async def _play(self, client: ArenaClient, match_id: str, token: str,
                    status: Callable[[str], None]) -> None:
        player = self.make_player()
        try:
            result = await client.play_seat(match_id, token, _Tracked(player, status), name=self.name)
        except ModelCallError as exc:  # permanent: every further match would fail the same way
            raise AgentRunError(f"the model failed: {exc}") from None
        except (grpc.aio.AioRpcError, ConnectionError) as exc:
            detail = f"{exc.code().name}: {exc.details()}" if isinstance(exc, grpc.aio.AioRpcError) else str(exc)
            if isinstance(exc, grpc.aio.AioRpcError) and exc.code() == grpc.StatusCode.UNAVAILABLE:
                raise AgentRunError(f"lost the arena at {self.config.arena}: {detail}") from None
            self.summary.errors.append(f"match {match_id}: {detail}")
            log.warning("seat in match %s ended early: %s", match_id, detail)
            return
        self._record(result, player)

    def _record(self, result: SeatResult, player: Any) -> None:
        usage = getattr(player, "usage", None) or Usage()
        report = MatchReport(result.match_id, result.seat, result.role, result.outcome, result.reason, result.turns,
                             result.accepted, len(result.rejections), usage, getattr(player, "stats", None))
        self.summary.matches.append(report)
        self.summary.usage.add(usage)
        if self._progress is not None:
            self._progress.update(self._overall, advance=1, info=_line(self.summary, self._playing - 1))


def _line(summary: RunSummary, playing: int) -> str:
    outcomes = [m.outcome for m in summary.matches if m.outcome is not None]
    mean = f"mean outcome {sum(outcomes) / len(outcomes):+.2f}  " if outcomes else ""
    u = summary.usage
    return (f"{mean}playing {playing}  tokens {u.total_tokens}  calls {u.calls}"
            + (f"  errors {u.errors}" if u.errors else ""))


def summary_table(summary: RunSummary, game_id: str) -> Table:
    from maro.arena.engine import game_class

    threshold = game_class(game_id).spec.win_threshold
    table = Table(title=f"{game_id}: {len(summary.matches)} matches ({summary.stopped or 'running'})")
    for column in ("match", "seat", "role", "outcome", "turns", "rejections", "tokens", "end"):
        table.add_column(column)
    for m in summary.matches:
        outcome = "-" if m.outcome is None else f"{m.outcome:+.2f}" + (" win" if m.outcome > threshold else "")
        table.add_row(m.match_id[:8], str(m.seat), m.role, outcome, str(m.turns), str(m.rejections),
                      str(m.usage.total_tokens), m.reason[:40])
    u = summary.usage
    table.caption = (f"model calls {u.calls}, tokens {u.prompt_tokens} in / {u.completion_tokens} out, "
                     f"retries {u.retries}, errors {u.errors}" + (f"; {len(summary.errors)} seats ended early"
                                                                  if summary.errors else ""))
    return table


async def run_agents(config: AgentRunConfig, *, settings: ModelSettings | None = None,
                     complete_fn: CompleteFn = complete, console: Console | None = None,
                     on_runner: Callable[[AgentRunner], None] | None = None) -> RunSummary:
    """Resolve the model by name in the registry (unless `settings` are given) and run."""
    if settings is None:
        from maro.agents.registry import ModelRegistry

        settings = ModelRegistry.load(config.registry).settings(config.model)
    runner = AgentRunner(config, settings, complete_fn=complete_fn, console=console)
    if on_runner is not None:
        on_runner(runner)
    return await runner.run()
