"""The match service: creates matches, seats remote players and the server-side players its
`SeatFactory` makes (bots, model agents), runs the lobby, and owns the live runners."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from maro.arena.auth import LOCAL, Principal
from maro.arena.engine import GAMES, GameSpec, game_class, game_ids, make_game
from maro.arena.errors import (
    ArenaError,
    BadRequest,
    Conflict,
    Exhausted,
    GameError,
    Moved,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from maro.arena.match.inputs import display_name, shown
from maro.arena.match.messages import MatchEnd, Rejection, SeatChannel, TurnPrompt
from maro.arena.match.runner import MatchRunner, RunnerConfig
from maro.arena.match.seats import SEAT_KINDS, SERVER_KINDS, SeatFactory, SeatPlan, ServerPlayer
from maro.arena.metrics import ArenaMetrics
from maro.arena.store.matches import MatchStore, store_name
from maro.arena.store.ratings import RatingBook
from maro.arena.store.records import EventRecord, MatchRecord, SeatRecord
from maro.arena.store.replicas import TakenSeat
from maro.arena.store.schema import hash_token

log = logging.getLogger(__name__)

__all__ = ["SEAT_KINDS", "ArenaError", "BadRequest", "Conflict", "Exhausted", "MatchService", "Moved", "NotFound",
           "PermissionDenied", "SeatPlan", "ServerPlayer", "Unavailable"]

LOBBY_POLL_S = 0.5
"""How often a lobby call that waits asks the store for seats other replicas opened; a seat this
replica opens wakes it at once."""


@dataclass
class LiveMatch:
    """A running match as the service holds it: what `join` and the end-of-match rating need
    without asking the store."""

    runner: MatchRunner
    task: asyncio.Task
    channels: list[SeatChannel]
    record: MatchRecord
    """The match as created; seats' names follow `join`, roles and outcome come from the runner."""
    token_hashes: dict[str, int]
    """The hash of each remote seat's token, and of each open seat's once the lobby gave it out,
    to its seat."""
    created_by: str = ""
    """The principal that created the match (its live matches are capped)."""
    players: list[asyncio.Task] = field(default_factory=list)

    def final_record(self) -> MatchRecord:
        """The record as stored once the runner has ended the match."""
        runner, state = self.runner, self.runner.state
        finished = runner.status == "finished" and state is not None
        return replace(
            self.record, status=runner.status,
            seats=tuple(replace(s, role=r) for s, r in zip(self.record.seats, runner.roles, strict=True)),
            outcome=tuple(state.outcome) if finished else None, end_reason=state.end_reason if finished else "",
        )


class MatchService:
    """Everything the transport needs, with domain types only."""

    def __init__(self, store: MatchStore, config: RunnerConfig | None = None, metrics: ArenaMetrics | None = None,
                 replica: str = "", seats: SeatFactory | None = None, max_live_matches_per_principal: int = 64,
                 lease_s: float = 15.0):
        """`seats` plays `bot` and `model` seats; without one they are refused. `replica` names
        this service among those sharing `store`; each holds a lease it renews every third of
        `lease_s`, and the matches of one whose lease ran out are aborted by the others."""
        self.store = store
        self.lease_s = lease_s
        self.address = ""
        self._leasing: asyncio.Task | None = None
        self.max_live_matches = max_live_matches_per_principal
        self.replica = replica
        self.seats = seats
        self.config = config or RunnerConfig()
        self.metrics = metrics or ArenaMetrics()
        self.ratings = RatingBook(store.engine)
        self._rating: dict[str, asyncio.Task] = {}
        self.live: dict[str, LiveMatch] = {}
        self._seat_opened = asyncio.Condition()

    def recover(self) -> int:
        """After a crash: this replica's matches left created or running were interrupted; mark
        them aborted so the learner never reads them half-played. Returns how many there were."""
        count = self.store.abort_unfinished("aborted: the server stopped while the match was live", self.replica)
        if count:
            log.warning("marked %d interrupted matches aborted", count)
        return count

    async def start(self, address: str) -> None:
        """Recover, take this replica's lease with the address clients reach it at, and keep
        renewing it (and reaping replicas whose lease ran out) until `shutdown`."""
        self.recover()
        self.address = address
        await self.store.run(self.store.leases.heartbeat, self.replica, address, register=True)
        await self._reap()
        self._leasing = asyncio.create_task(self._keep_lease(), name=f"lease-{self.replica}")

    async def _keep_lease(self) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                if not await self.store.run(self.store.leases.heartbeat, self.replica, self.address):
                    await self._lost_lease()
                await self._reap()
            except Exception:  # an unreachable store: try again next round; the lease may run out
                log.exception("lease renewal failed", extra={"reason": self.replica})

    async def _lost_lease(self) -> None:
        """Another replica took this one for dead (its heartbeats did not arrive within the
        lease) and aborted its matches: stop playing them, and take a lease anew."""
        log.error("replica %r lost its lease; its %d live matches were aborted by another replica",
                  self.replica, len(self.live))
        tasks = [m.task for m in self.live.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.store.run(self.store.leases.heartbeat, self.replica, self.address, register=True)

    async def _reap(self) -> None:
        reason = f"aborted: its arena replica stopped renewing its lease ({self.lease_s:g}s)"
        for replica, count in (await self.store.run(self.store.leases.reap, self.lease_s, reason)).items():
            if replica != self.replica:
                log.warning("replica %r missed its lease: marked its %d live matches aborted", replica, count)

    def list_games(self) -> list[GameSpec]:
        return [game_class(g).spec for g in game_ids()]

    def game_families(self) -> list[str]:
        return GAMES.families()

    async def create_match(self, game_id: str, seed: int, params: dict[str, Any] | None,
                           seats: Sequence[SeatPlan], principal: Principal = LOCAL) -> tuple[str, dict[int, str]]:
        """Start a match for `principal`; returns its id and the tokens of its `remote` seats."""
        game = self._game(game_id, params, seats, principal)
        game_id = game.spec.id  # an adapted game's canonical id (`openspiel:kuhn_poker()` -> `openspiel:kuhn_poker`)
        mine = sum(live.created_by == principal.name for live in self.live.values())
        if mine >= self.max_live_matches:
            raise Exhausted(f"{principal.name} has {mine} live matches, the most one caller may have; "
                            "let some finish first")
        match_id = uuid.uuid4().hex
        tokens = {i: secrets.token_urlsafe(24) for i, p in enumerate(seats) if p.kind == "remote"}
        open_seats = [i for i, p in enumerate(seats) if p.kind == "open"]
        record = MatchRecord(
            match_id=match_id, game_id=game_id, seed=seed, params=game.params.model_dump(mode="json"),
            status="created", config=self.config.model_dump(mode="json"),
            seats=tuple(SeatRecord(seat=i, kind=p.kind, name=store_name(p.player_name(i)), bot=p.bot or p.model,
                                   principal=_server_seat_identity(p, principal)) for i, p in enumerate(seats)),
        )
        hashes = {i: hash_token(t) for i, t in tokens.items()}
        # In place, not awaited: the lobby may hand out its open seats only once `live` has it.
        self.store.create_match(record, hashes, self.replica, created_by=principal.name, open_seats=open_seats)
        channels = [SeatChannel(seat=i) for i in range(len(seats))]
        runner = MatchRunner(match_id, game, seed, channels, self.store, self.config, self.metrics)
        live = LiveMatch(runner, asyncio.create_task(runner.run(), name=f"match-{match_id}"), channels, record,
                         {h: i for i, h in hashes.items()}, created_by=principal.name)
        for i, plan in enumerate(seats):
            if plan.kind in ("bot", "model"):
                channels[i].attach()
                player = self.seats.player(i, plan, game_id, random.Random(f"{seed}:{i}"))
                live.players.append(asyncio.create_task(_drive(channels[i], player)))
        self.live[match_id] = live
        live.task.add_done_callback(lambda _t, m=match_id: self._ended(m))
        if open_seats:
            async with self._seat_opened:
                self._seat_opened.notify_all()
        log.info("match created", extra={"match_id": match_id, "game_id": game_id, "reason": [p.kind for p in seats]})
        return match_id, tokens

    def _game(self, game_id: str, params: dict[str, Any] | None, seats: Sequence[SeatPlan], principal: Principal):
        try:
            game = make_game(game_id, params)
        except GameError as exc:
            raise NotFound(str(exc)) from exc
        except ValidationError as exc:
            raise BadRequest(f"invalid params for {game_id}: {validation_summary(exc)}") from None
        except (ValueError, TypeError, RecursionError) as exc:  # a validator's own error on odd input
            raise BadRequest(f"invalid params for {game_id}: {shown(str(exc), 200)}") from None
        if len(seats) != game.num_players():
            raise BadRequest(f"{game_id} with these params needs {game.num_players()} seats, got {len(seats)}")
        for i, plan in enumerate(seats):
            if plan.kind not in SEAT_KINDS:
                raise BadRequest(f"seat {i}: unknown kind {plan.kind!r}; use one of {', '.join(SEAT_KINDS)}")
            if plan.api_base:
                raise BadRequest(f"seat {i}: a {plan.kind} seat takes no api_base; a model seat names a model of "
                                 "this server's registry, which says where that model runs")
            if plan.kind == "model" and not plan.model:
                raise BadRequest(f"seat {i}: a model seat needs a model (a name of the server's registry)")
            if plan.kind in SERVER_KINDS:
                if self.seats is None:
                    raise BadRequest(f"seat {i}: this arena plays no {plan.kind} seats; play that seat from your "
                                     "side in a remote seat")
                self.seats.check(i, plan, game_id, principal)
        return game

    def _ended(self, match_id: str) -> None:
        live = self.live.pop(match_id, None)
        if live is None:
            return
        for task in live.players:  # an aborted match sends no MatchEnd for them to stop on
            task.cancel()
        if live.runner.status == "finished":  # rated as a task of its own: a transaction per match
            task = asyncio.get_running_loop().create_task(self._rate(match_id, live.final_record()))
            self._rating[match_id] = task
            task.add_done_callback(lambda _t, m=match_id: self._rating.pop(m, None))

    async def _rate(self, match_id: str, record) -> None:
        try:
            await self.store.run(self.ratings.update, record)
        except Exception:  # ratings must never take the arena down
            log.exception("rating update failed", extra={"match_id": match_id})

    # --- the lobby -------------------------------------------------------------------------
    async def find_seat(self, game_id: str, wait: bool, *, here: bool = False) -> TakenSeat:
        """The oldest open seat of a live match of `game_id` on any live replica sharing the store
        (on this one with `here`), with a new seat token and the address of the replica playing
        it; with `wait`, until one opens."""
        try:
            game_id = game_class(game_id).spec.id
        except GameError as exc:
            raise NotFound(str(exc)) from exc
        replica = self.replica if here else None
        while True:
            taken = await self.store.run(self.store.leases.take_seat, game_id, replica)
            if taken is not None:
                if (live := self.live.get(taken.match_id)) is not None:
                    live.token_hashes[hash_token(taken.token)] = taken.seat
                return taken
            if not wait:
                raise Unavailable(f"no open seat in any {game_id} match; create one or call with wait")
            async with self._seat_opened:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._seat_opened.wait(), LOBBY_POLL_S)

    def open_seats(self, here: bool = False) -> list[tuple[str, str, int]]:
        """(game id, match id, seat) of every open seat in the lobby (this replica's with `here`),
        oldest first per game."""
        seats = self.store.leases.lobby()
        return [s for s in seats if s[1] in self.live] if here else seats

    def open_seat_counts(self, match_ids: Sequence[str]) -> dict[str, int]:
        counts: dict[str, int] = dict.fromkeys(match_ids, 0)
        for _game, match_id, _seat in self.store.leases.lobby(match_ids):
            counts[match_id] += 1
        return counts

    # --- seats, records, spectators ----------------------------------------------------------
    def join(self, match_id: str, token: str, player_name: str = "",
             principal: Principal = LOCAL) -> tuple[SeatChannel, MatchRunner, bool, int]:
        """Seat the holder of `token`; a seat that was left may be taken again with its token, by
        the principal that took it first. Returns the seat's channel, the runner, whether this is
        a rejoin, and the session number."""
        if not match_id or not token:
            raise BadRequest("join needs a match_id and a seat_token")
        live = self.live.get(match_id)
        if live is None:
            self._elsewhere(match_id)
            record = self.store.get_match(match_id, with_events=False)
            if record is None:
                raise NotFound(f"unknown match {match_id!r}")
            raise Conflict(f"match {match_id} is {record.status}; nothing to join")
        seat = live.token_hashes.get(hash_token(token))
        if seat is None:  # an open seat another replica's lobby gave out: its token is in the store
            seat = self.store.seat_for_token(match_id, token)
            if seat is None or live.record.seats[seat].kind != "open":
                raise PermissionDenied("the seat token is not valid for this match")
            live.token_hashes[hash_token(token)] = seat
        channel = live.channels[seat]
        label = display_name(player_name)
        identity = _joined_identity(principal, label)
        held_by = live.record.seats[seat].principal
        if channel.joined.is_set() and held_by != identity:
            raise PermissionDenied(f"seat {seat} was taken by another principal; only it may rejoin")
        if channel.attached:
            raise Conflict(f"seat {seat} is already connected; close that session first")
        rejoining = channel.joined.is_set()
        if not rejoining:
            seats = list(live.record.seats)
            name = label or seats[seat].name
            self.store.set_seat_player(match_id, seat, name, identity)
            seats[seat] = replace(seats[seat], name=name, principal=identity)
            live.record = replace(live.record, seats=tuple(seats))
        session = channel.attach()
        if rejoining and channel.awaiting_turn is not None and channel.last_prompt is not None:
            channel.send(channel.last_prompt)  # a rejoining seat gets its pending turn back
        return channel, live.runner, rejoining, session

    def get_match(self, match_id: str) -> MatchRecord:
        record = self.store.get_match(match_id)
        if record is None:
            raise NotFound(f"unknown match {match_id!r}")
        return record

    def list_matches(self, game_id: str | None, status: str | None, since: datetime | None,
                     until: datetime | None, limit: int) -> list[MatchRecord]:
        if not 0 <= limit <= 1000:
            raise BadRequest("limit must be between 0 and 1000")
        return self.store.list_matches(game_id=game_id, status=status, since=since, until=until,
                                       limit=limit or 100, newest_first=True)

    def spectate(self, match_id: str) -> tuple[list[EventRecord], asyncio.Queue | None, MatchRecord]:
        """Public events so far and, for a live match, a queue of the next ones and its end."""
        live = self.live.get(match_id)
        if live is None:
            self._elsewhere(match_id)
        record = self.get_match(match_id)
        if live is None:
            return [e for e in record.events if e.visible_to(None)], None, record
        history, queue = live.runner.spectate()
        return history, queue, record

    async def abort(self, match_id: str, reason: str) -> bool:
        """End a live match of this replica as aborted with `reason` (its seats get no end: a
        client whose player died, say). False when it is not live here."""
        live = self.live.get(match_id)
        if live is None:
            return False
        live.runner.stop_reason = f"aborted: {reason}"
        live.task.cancel()
        await asyncio.gather(live.task, return_exceptions=True)
        return True

    def _elsewhere(self, match_id: str) -> None:
        """Raise Moved for a match live on another replica, Unavailable while that replica has no lease."""
        owner = self.store.leases.owner(match_id)
        if owner is None or owner[0] == self.replica:
            return
        replica, address = owner
        if address is None:
            raise Unavailable(f"match {match_id} is played on replica {replica!r}, which holds no lease now; "
                              f"unless it renews it, the match is aborted within {self.lease_s:g}s")
        raise Moved(f"match {match_id} is played on replica {replica!r} at {address}; connect there", address)

    async def wait(self, match_id: str) -> None:
        """Until the match has ended and, when it finished, been rated."""
        live = self.live.get(match_id)
        if live is not None:
            await asyncio.shield(live.task)
        if (rating := self._rating.get(match_id)) is not None:
            await asyncio.shield(rating)

    async def shutdown(self) -> None:
        """Stop every live match (the runner marks interrupted matches aborted), then give up
        this replica's lease."""
        if self._leasing is not None:
            self._leasing.cancel()
            await asyncio.gather(self._leasing, return_exceptions=True)
        tasks = [m.task for m in self.live.values()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*self._rating.values(), return_exceptions=True)  # finished matches get rated
        if self._leasing is not None:
            self._leasing = None
            try:
                await self.store.run(self.store.leases.leave, self.replica)
            except Exception:  # the lease runs out on its own
                log.exception("could not give up the lease", extra={"reason": self.replica})


def _joined_identity(principal: Principal, name: str) -> str:
    """Who is rated for a seat a principal joins: the principal itself (an admin may label
    several identities of its own, `admin:label`); nobody on a keyless local server, which rates
    by display name because its one caller, the operator, speaks for every player."""
    if principal.local:
        return ""
    return f"{principal.name}:{name}" if principal.admin and name else principal.name


def _server_seat_identity(plan: SeatPlan, principal: Principal) -> str:
    """A bot or model seat's rated identity, which no caller's label can take over."""
    if principal.local or plan.kind not in ("bot", "model"):
        return ""
    return f"{plan.kind}:{plan.bot or plan.model}"


def validation_summary(exc: ValidationError) -> str:
    """A pydantic error as `field: message; ...`, without the offending input (it may be huge)."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False)[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "params"
        parts.append(f"{shown(where, 64).strip(chr(39))}: {error['msg'][:160]}")
    return "; ".join(parts)


async def _drive(channel: SeatChannel, player: ServerPlayer) -> None:
    """A server-side seat: answer every turn prompt from the observation alone."""
    rejection: str | None = None
    while True:
        message = await channel.outbox.get()
        if isinstance(message, TurnPrompt):
            try:
                submission = await player.act(message, rejection)
            except Exception as exc:  # a failing model call: the turn's deadline and fallback decide
                log.warning("server-side player failed: %s", exc, extra={"seat": channel.seat})
                continue
            rejection = None
            channel.submit(submission)
        elif isinstance(message, Rejection):
            rejection = message.reason
        elif isinstance(message, MatchEnd):
            return
