"""The match service: creates matches, seats players and bots, and owns the live runners."""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from maro.agents.bots import get_bot
from maro.arena.engine import GameError, GameSpec, game_class, game_ids, make_game
from maro.arena.messages import MatchEnd, SeatChannel, Submission, TurnPrompt
from maro.arena.records import MatchRecord, SeatRecord
from maro.arena.runner import MatchRunner, RunnerConfig
from maro.arena.store import MatchStore, hash_token

log = logging.getLogger(__name__)


class ArenaError(Exception):
    """Base of the service's domain errors; the transport maps each kind to a status code."""


class BadRequest(ArenaError):
    pass


class NotFound(ArenaError):
    pass


class PermissionDenied(ArenaError):
    pass


class Conflict(ArenaError):
    pass


@dataclass(frozen=True)
class SeatPlan:
    kind: str  # "remote" | "bot"
    bot: str = ""
    name: str = ""


@dataclass
class LiveMatch:
    runner: MatchRunner
    task: asyncio.Task
    channels: list[SeatChannel]


class MatchService:
    """Everything the transport needs, with domain types only."""

    def __init__(self, store: MatchStore, config: RunnerConfig | None = None):
        self.store = store
        self.config = config or RunnerConfig()
        self.live: dict[str, LiveMatch] = {}

    def list_games(self) -> list[GameSpec]:
        return [game_class(g).spec for g in game_ids()]

    async def create_match(self, game_id: str, seed: int, params: dict[str, Any] | None,
                           seats: Sequence[SeatPlan]) -> tuple[str, dict[int, str]]:
        try:
            game = make_game(game_id, params)
        except GameError as exc:
            raise NotFound(str(exc)) from exc
        except ValidationError as exc:
            raise BadRequest(f"invalid params for {game_id}: {exc.errors(include_url=False)}") from exc
        spec = game.spec
        if not spec.min_players <= len(seats) <= spec.max_players or len(seats) != game.num_players():
            raise BadRequest(f"{game_id} needs {game.num_players()} seats, got {len(seats)}")
        for plan in seats:
            if plan.kind not in ("remote", "bot"):
                raise BadRequest(f"unknown seat kind {plan.kind!r}; use remote or bot")
            if plan.kind == "bot":
                try:
                    get_bot(plan.bot)
                except KeyError as exc:
                    raise BadRequest(str(exc.args[0])) from exc
        match_id = uuid.uuid4().hex
        tokens = {i: secrets.token_urlsafe(24) for i, p in enumerate(seats) if p.kind == "remote"}
        record = MatchRecord(
            match_id=match_id, game_id=game_id, seed=seed, params=game.params.model_dump(mode="json"),
            status="created", config=self.config.model_dump(mode="json"),
            seats=tuple(SeatRecord(seat=i, kind=p.kind, name=p.name or p.bot or f"seat-{i}", bot=p.bot)
                        for i, p in enumerate(seats)),
        )
        self.store.create_match(record, {i: hash_token(t) for i, t in tokens.items()})
        channels = [SeatChannel(seat=i) for i in range(len(seats))]
        runner = MatchRunner(match_id, game, seed, channels, self.store, self.config)
        bots = []
        for i, plan in enumerate(seats):
            if plan.kind == "bot":
                channels[i].attach()
                bots.append(asyncio.create_task(_drive_bot(channels[i], plan.bot, random.Random(f"{seed}:{i}"))))
        task = asyncio.create_task(runner.run(), name=f"match-{match_id}")
        self.live[match_id] = LiveMatch(runner, task, channels)
        task.add_done_callback(lambda _t, m=match_id, b=tuple(bots): self._ended(m, b))
        log.info("match %s created: %s seed=%s seats=%s", match_id, game_id, seed, [p.kind for p in seats])
        return match_id, tokens

    def _ended(self, match_id: str, bots: tuple[asyncio.Task, ...]) -> None:
        self.live.pop(match_id, None)
        for bot in bots:  # an aborted match sends no MatchEnd for a bot to stop on
            bot.cancel()

    def join(self, match_id: str, token: str) -> tuple[SeatChannel, MatchRunner, bool]:
        """Seat the holder of `token`; a seat that was left may be taken again with its token.
        Returns the seat's channel, the runner and whether this is a rejoin."""
        if not match_id or not token:
            raise BadRequest("join needs a match_id and a seat_token")
        live = self.live.get(match_id)
        if live is None:
            record = self.store.get_match(match_id, with_events=False)
            if record is None:
                raise NotFound(f"unknown match {match_id!r}")
            raise Conflict(f"match {match_id} is {record.status}; nothing to join")
        seat = self.store.seat_for_token(match_id, token)
        if seat is None:
            raise PermissionDenied("the seat token is not valid for this match")
        channel = live.channels[seat]
        if channel.attached:
            raise Conflict(f"seat {seat} is already connected; close that session first")
        rejoining = channel.joined.is_set()
        channel.attach()
        if rejoining and channel.awaiting_turn is not None and channel.last_prompt is not None:
            channel.send(channel.last_prompt)  # a rejoining seat gets its pending turn back
        return channel, live.runner, rejoining

    def get_match(self, match_id: str) -> MatchRecord:
        record = self.store.get_match(match_id)
        if record is None:
            raise NotFound(f"unknown match {match_id!r}")
        return record

    async def wait(self, match_id: str) -> None:
        live = self.live.get(match_id)
        if live is not None:
            await asyncio.shield(live.task)

    async def shutdown(self) -> None:
        """Stop every live match; the runner marks interrupted matches aborted."""
        tasks = [m.task for m in self.live.values()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _drive_bot(channel: SeatChannel, bot_name: str, rng: random.Random) -> None:
    """A server-side bot seat: answer every turn prompt from the observation alone."""
    bot = get_bot(bot_name)
    while True:
        message = await channel.outbox.get()
        if isinstance(message, TurnPrompt):
            text = bot.act(message.observation.view, message.legal_actions, rng)
            channel.submit(Submission(message.turn, text))
        elif isinstance(message, MatchEnd):
            return
