"""What flows between a seat and the match runner, independent of any transport."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from typing import Any

from maro.arena.match.inputs import clean_text
from maro.arena.store.records import TokenLogprob


@dataclass(frozen=True)
class BehaviorReport:
    """What a model-driven player reports with its action, for the learner."""

    messages: list[dict]
    completion: str
    logprobs: tuple[TokenLogprob, ...] = ()
    model: str = ""


@dataclass(frozen=True)
class Submission:
    turn: int
    text: str
    behavior: BehaviorReport | None = None


@dataclass(frozen=True)
class Joined:
    match_id: str
    seat: int
    role: str
    game_id: str
    num_players: int


@dataclass(frozen=True)
class ObservationMsg:
    turn: int
    role: str
    view: dict[str, Any]
    events: tuple[str, ...] = ()


@dataclass(frozen=True)
class TurnPrompt:
    turn: int
    attempt: int
    attempts_left: int
    observation: ObservationMsg
    legal_actions: tuple[str, ...]
    action_format: str
    deadline_unix_ms: int


@dataclass(frozen=True)
class Accepted:
    turn: int


@dataclass(frozen=True)
class Rejection:
    turn: int
    reason: str
    attempts_left: int


@dataclass(frozen=True)
class MatchEnd:
    outcomes: tuple[float, ...]
    reason: str
    roles: tuple[str, ...]
    observation: ObservationMsg | None = None


ToPlayer = Joined | ObservationMsg | TurnPrompt | Accepted | Rejection | MatchEnd


@dataclass
class SeatChannel:
    """The queues between one seat's transport (a gRPC stream, a bot task) and the runner.

    A submission that does not answer the turn the runner is waiting for is refused here,
    so out-of-turn actions never reach the game. Every action text, from any kind of seat, is
    cleaned of control characters here, before it is validated, stored or shown.
    """

    seat: int
    outbox: asyncio.Queue = field(default_factory=asyncio.Queue)
    inbox: asyncio.Queue = field(default_factory=asyncio.Queue)
    awaiting_turn: int | None = None
    last_prompt: TurnPrompt | None = None
    attached: bool = False
    joined: asyncio.Event = field(default_factory=asyncio.Event)

    def send(self, message: ToPlayer) -> None:
        self.outbox.put_nowait(message)

    def submit(self, submission: Submission) -> None:
        if self.awaiting_turn is None:
            self.send(Rejection(submission.turn, "it is not your turn", 0))
        elif submission.turn != self.awaiting_turn:
            left = self.last_prompt.attempts_left if self.last_prompt else 0
            self.send(Rejection(submission.turn, f"stale action for turn {submission.turn}; the current turn is {self.awaiting_turn}", left))
        else:
            self.awaiting_turn = None
            text = clean_text(submission.text)
            self.inbox.put_nowait(submission if text == submission.text else replace(submission, text=text))

    session: int = 0

    def attach(self) -> int:
        """A player (re)joins: drop what queued while nobody listened. Returns the session's number."""
        while not self.outbox.empty():
            self.outbox.get_nowait()
        self.attached = True
        self.joined.set()
        self.session += 1
        return self.session

    def detach(self, session: int) -> None:
        """A session ends; a late end of an older session leaves a newer one attached."""
        if session == self.session:
            self.attached = False
