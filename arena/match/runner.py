"""The match runner: turn order, deadlines, the invalid-action policy, and logging every step."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from maro.arena.engine import Event, Game, GameError, Observation, State
from maro.arena.errors import GameCrashed
from maro.arena.match.messages import (
    Accepted,
    BehaviorReport,
    MatchEnd,
    ObservationMsg,
    Rejection,
    SeatChannel,
    Submission,
    TurnPrompt,
)
from maro.arena.metrics import ArenaMetrics
from maro.arena.store.matches import MatchStore
from maro.arena.store.records import BehaviorRecord, EventRecord

log = logging.getLogger(__name__)


class RunnerConfig(BaseModel):
    """How matches are refereed."""

    model_config = ConfigDict(extra="forbid")

    turn_timeout_s: float = Field(120.0, gt=0, le=86400)
    """Time a seat has for one attempt at its turn; then the game's fallback applies."""
    max_retries: int = Field(2, ge=0, le=10)
    """Rejected attempts allowed per turn before the fallback applies."""
    join_timeout_s: float = Field(300.0, gt=0, le=86400)
    """Time remote seats have to join before the match is aborted."""
    max_events: int = Field(10_000, ge=10, le=10_000_000)
    """Events one match may record; a match that reaches it is aborted with the reason."""
    max_stored_bytes: int = Field(64 * 1024 * 1024, ge=1024, le=2**40)
    """What one match may write to the store (events, behaviors with their prompts and
    snapshots), roughly counted in characters; beyond it the match is aborted."""
    max_match_s: float = Field(6 * 3600.0, gt=0, le=7 * 86400)
    """Wall time from the start of play to the end; a match still running then is aborted."""


@dataclass
class _Result:
    """How one seat's turn ended: an accepted submission, or the fallback."""

    submission: Submission | None
    forfeit_reason: str = ""
    fallback: bool = False
    action: Any = None
    """The game's parsed action, when the submission was validated (the fallback is not yet)."""
    parsed: bool = False


class MatchTooLarge(Exception):
    """A match over one of the runner's caps; the message is the abort reason."""


def _size(record: EventRecord | BehaviorRecord) -> int:
    """A write's size in characters, counted cheaply (message contents, not their JSON)."""
    if isinstance(record, EventRecord):
        return len(record.text) + 64
    return (len(record.action_text) + len(record.completion) + len(record.reason) + len(record.snapshot_before)
            + len(record.snapshot_after) + 16 * len(record.logprobs) + 128
            + sum(len(str(m.get("content", ""))) + 16 for m in record.messages))


class MatchRunner:
    """Referees one match between seat channels; the game stays pure, the store gets everything."""

    def __init__(self, match_id: str, game: Game, seed: int, channels: list[SeatChannel],
                 store: MatchStore, config: RunnerConfig, metrics: ArenaMetrics | None = None):
        self.match_id, self.game, self.seed = match_id, game, seed
        self.channels, self.store, self.config = channels, store, config
        self.metrics = metrics or ArenaMetrics()
        self.spectators: list[asyncio.Queue] = []
        self._log = {"match_id": match_id, "game_id": game.spec.id}
        self.state: State | None = None
        self._events: list[EventRecord] = []
        self._sent: list[int] = [0] * len(channels)
        self._index: list[int] = [0] * len(channels)
        self.turn = 0
        self.stored_bytes = 0
        self.roles: list[str] = []
        self.stop_reason = "aborted: server stopped"
        """The abort reason written when the match is cancelled (`MatchService.abort` sets its own)."""
        self.status = "created"
        """created, running, then finished or aborted; what the store holds for the match too."""

    async def run(self) -> None:
        self.metrics.matches_live.inc()
        try:
            await self._run()
        except asyncio.CancelledError:
            self._abort(self.stop_reason)
            raise
        except GameCrashed as exc:  # an adapted game's own bug: this match ends, nothing else
            log.warning("match %s", exc.reason, exc_info=exc, extra=self._log)
            self._abort(f"aborted: {exc.reason}")
            self._end(self.roles, aborted=True, reason=f"aborted: {exc.reason}", observe=False)
        except Exception as exc:  # a bug must not leave a match half-visible as running
            log.exception("match failed", extra=self._log)
            # The detail may quote hidden state (a failed write's parameters): it goes to the log only.
            self._abort(f"aborted: internal error ({type(exc).__name__})")
        finally:
            if self.status != "finished":
                self.status = "aborted"
            self.metrics.matches_live.dec()
            self.metrics.matches_ended.labels(self.status).inc()
            log.info("match ended", extra={**self._log, "status": self.status})

    async def _write(self, call, *args, then=None, **kwargs):
        """A store write (`MatchStore.run`: off the event loop for a networked database). A write
        that has started always completes, and `then` runs once it did, even when the match is
        cancelled meanwhile: the abort that cancellation leads to is written after it, and never
        over a match this write has finished."""
        write = call(*args, **kwargs) if inspect.iscoroutinefunction(call) else self.store.run(call, *args, **kwargs)
        task = asyncio.ensure_future(write)
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            await asyncio.wait([task])
            if then is not None and not task.cancelled() and task.exception() is None:
                then()
            raise
        if then is not None:
            then()
        return result

    def _finished(self) -> None:
        self.status = "finished"

    def _abort(self, reason: str) -> None:
        if self.status != "finished":  # the final step's write already recorded the end
            self.status = "aborted"
            self.store.finish(self.match_id, [0.0] * len(self.channels), reason, status="aborted")

    async def _run(self) -> None:
        state, events = self.game.init(self.seed)
        self.state = state
        self.roles = roles = [self.game.role(state, s) for s in range(len(self.channels))]
        records = self._records(events)
        await self._write(self.store.set_roles, self.match_id, roles, records)
        self._publish(records)
        if not await self._wait_for_joins():
            self._abort_and_end("aborted: seats did not join in time")
            return
        await self._write(self.store.set_status, self.match_id, "running")
        self.status = "running"
        self._observe_all()
        try:
            async with asyncio.timeout(self.config.max_match_s):
                while not self.state.finished:
                    await self._play_turn()
                    self.turn += 1
        except TimeoutError:
            self._abort_and_end(f"aborted: still running after the limit of {self.config.max_match_s:g}s per match")
            return
        except MatchTooLarge as exc:
            self._abort_and_end(str(exc))
            return
        self._end(roles)

    def _abort_and_end(self, reason: str) -> None:
        """Record the match aborted and tell every seat and spectator why."""
        log.warning("match %s", reason, extra=self._log)
        self._abort(reason)
        self._end(self.roles, aborted=True, reason=reason)

    def _count(self, records: list, behaviors: list = ()) -> None:
        """Account a write against the match's caps (raises MatchTooLarge once over)."""
        self.stored_bytes += sum(map(_size, records)) + sum(map(_size, behaviors))
        if len(self._events) + len(records) > self.config.max_events:
            raise MatchTooLarge(f"aborted: more than {self.config.max_events} events")
        if self.stored_bytes > self.config.max_stored_bytes:
            raise MatchTooLarge(f"aborted: more than {self.config.max_stored_bytes} bytes written")

    async def _wait_for_joins(self) -> bool:
        deadline = time.monotonic() + self.config.join_timeout_s
        try:
            for channel in self.channels:
                await asyncio.wait_for(channel.joined.wait(), max(0.0, deadline - time.monotonic()))
            return True
        except TimeoutError:
            return False

    async def _play_turn(self) -> None:
        state = self.state
        acting = sorted(self.game.acting(state))
        if len(acting) == 1:  # the common case needs no task per seat
            results = [await self._collect(state, acting[0])]
        else:
            results = await asyncio.gather(*(self._collect(state, seat) for seat in acting))
        forfeits = [(seat, r.forfeit_reason) for seat, r in zip(acting, results) if r.submission is None]
        if forfeits:
            seat, reason = forfeits[0]
            new_state, events = self.game.forfeit(state, seat, reason)
            accepted = []
        else:
            # Each accepted text was parsed once, in _collect; only a fallback's default is parsed here.
            actions = {seat: r.action if r.parsed else self.game.validate(state, seat, r.submission.text)
                       for seat, r in zip(acting, results)}
            new_state, events = self.game.apply(state, actions)
            accepted = [self._behavior(state, new_state, seat, r.submission, fallback=r.fallback)
                        for seat, r in zip(acting, results)]
        records = self._records(events)
        self._count(records, accepted)
        # Written before anything is acknowledged to a player; the last step also ends the match.
        end = (new_state.outcome, new_state.end_reason) if new_state.finished else None
        await self._write(self.store.append_grouped, self.match_id, records, accepted, finish=end,
                          then=self._finished if end is not None else None)
        self.state = new_state
        self._publish(records)
        for b in accepted:
            self._index[b.seat] += 1
            self.channels[b.seat].send(Accepted(self.turn))
        if not new_state.finished:
            self._observe_all()

    async def _collect(self, state: State, seat: int) -> _Result:
        """One seat's turn: prompt, wait, validate; retries with the reason, then the fallback."""
        channel = self.channels[seat]
        seen = self.game.observe(state, seat)
        observation = self._observation(seat, seen)
        attempts = self.config.max_retries + 1
        game_id = self.game.spec.id
        started = time.monotonic()
        for attempt in range(attempts):
            deadline = time.time() + self.config.turn_timeout_s
            prompt = TurnPrompt(
                turn=self.turn, attempt=attempt, attempts_left=attempts - attempt - 1, observation=observation,
                legal_actions=seen.legal_actions, action_format=self.game.spec.action_format,
                deadline_unix_ms=int(deadline * 1000),
            )
            channel.last_prompt, channel.awaiting_turn = prompt, self.turn
            channel.send(prompt)
            try:
                async with asyncio.timeout(self.config.turn_timeout_s):
                    submission: Submission = await channel.inbox.get()
            except TimeoutError:
                channel.awaiting_turn = None
                self.metrics.deadline_expiries.labels(game_id).inc()
                log.info("deadline expired", extra={**self._log, "seat": seat, "turn": self.turn})
                return await self._fallback(state, seat, f"no action within {self.config.turn_timeout_s:g}s")
            try:
                action = self.game.validate(state, seat, submission.text)
                self.metrics.actions.labels(game_id).inc()
                self.metrics.turn_latency.labels(game_id).observe(time.monotonic() - started)
                return _Result(submission, action=action, parsed=True)
            except GameError as exc:
                reason = getattr(exc, "reason", str(exc))
                refused = self._behavior(state, None, seat, submission, attempt, reason)
                self._count([], [refused])
                await self._write(self.store.append_grouped, self.match_id, behaviors=[refused])
                channel.send(Rejection(self.turn, reason, attempts - attempt - 1))
                self.metrics.rejections.labels(game_id).inc()
        channel.awaiting_turn = None
        return await self._fallback(state, seat, f"{attempts} invalid actions")

    async def _fallback(self, state: State, seat: int, why: str) -> _Result:
        default = self.game.fallback_action(state, seat)
        if default is not None:
            return _Result(Submission(self.turn, default), fallback=True)
        return _Result(None, why)

    def _behavior(self, before: State, after: State | None, seat: int, sub: Submission,
                  attempt: int = 0, reason: str = "", fallback: bool = False) -> BehaviorRecord:
        report = sub.behavior or BehaviorReport(messages=[], completion="")
        return BehaviorRecord(
            match_id=self.match_id, seat=seat, role=self.game.role(before, seat), turn=self.turn,
            index=self._index[seat], attempt=attempt, accepted=after is not None, action_text=sub.text,
            reason=reason, messages=report.messages, completion=report.completion, logprobs=report.logprobs,
            model=report.model, snapshot_before=self.game.snapshot(before),
            snapshot_after=self.game.snapshot(after) if after is not None else "",
            fallback=fallback,
        )

    def _records(self, events: list[Event]) -> list[EventRecord]:
        start = len(self._events)
        return [EventRecord(seq=start + i, kind=e.kind, text=e.text, seat=e.seat,
                            private_to=tuple(e.private_to), data=dict(e.data)) for i, e in enumerate(events)]

    def _publish(self, records: list[EventRecord]) -> None:
        """Stored events become history and go to spectators."""
        self._events.extend(records)
        for queue in self.spectators:
            for record in records:
                if record.visible_to(None):
                    queue.put_nowait(record)

    def _observation(self, seat: int, obs: Observation | None = None) -> ObservationMsg:
        obs = obs if obs is not None else self.game.observe(self.state, seat)
        new = [e.text for e in self._events[self._sent[seat]:] if e.visible_to(seat)]
        self._sent[seat] = len(self._events)
        return ObservationMsg(turn=self.turn, role=obs.role, view=dict(obs.view), events=tuple(new))

    def _observe_all(self) -> None:
        acting = self.game.acting(self.state)
        for seat, channel in enumerate(self.channels):
            if seat not in acting:
                channel.send(self._observation(seat))

    def _end(self, roles: list[str], aborted: bool = False, reason: str = "aborted", observe: bool = True) -> None:
        """Tell every seat and spectator the end; `observe` False where the game cannot be asked
        for views any more (it crashed)."""
        roles = roles or [""] * len(self.channels)
        finished = self.state is not None and self.state.outcome and not aborted
        outcome = tuple(self.state.outcome) if finished else (0.0,) * len(roles)
        reason = reason if aborted else self.state.end_reason
        reveal = self.game.spec.reveal_roles_at_end
        for seat, channel in enumerate(self.channels):
            channel.awaiting_turn = None
            shown = tuple(r if reveal or s == seat else "" for s, r in enumerate(roles))
            channel.send(MatchEnd(outcome, reason, shown, self._observation(seat) if observe else None))
        public_end = MatchEnd(outcome, reason, tuple(roles) if reveal else ("",) * len(roles))
        for queue in self.spectators:
            queue.put_nowait(public_end)

    def spectate(self) -> tuple[list[EventRecord], asyncio.Queue]:
        """The public events so far and a queue that receives the next ones, then the MatchEnd."""
        queue: asyncio.Queue = asyncio.Queue()
        self.spectators.append(queue)
        return [e for e in self._events if e.visible_to(None)], queue

    def current_view(self, seat: int) -> ObservationMsg | None:
        """What a rejoining seat gets: its view now, with the full visible event history."""
        if self.state is None:
            return None
        obs = self.game.observe(self.state, seat)
        texts = tuple(e.text for e in self._events if e.visible_to(seat))
        return ObservationMsg(turn=self.turn, role=obs.role, view=dict(obs.view), events=texts)
