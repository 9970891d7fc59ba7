"""Domain records of the match store: what the learner and replay read (never protobuf)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class SeatRecord:
    seat: int
    kind: str  # "remote" | "open" | "bot" | "model"
    name: str
    """The display name: a label, never an identity."""
    role: str = ""
    bot: str = ""
    principal: str = ""
    """Who is rated for the seat on a server with keys: the principal that joined it, or
    `bot:NAME` / `model:NAME`; empty on a keyless local server, where the name is rated."""


@dataclass(frozen=True)
class EventRecord:
    seq: int
    kind: str
    text: str
    seat: int | None = None
    private_to: tuple[int, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)

    def visible_to(self, seat: int | None) -> bool:
        """Whether `seat` sees this event; seat None is a spectator, who sees public events only.
        The one rule every reader of events (runner, service, replay, transport) applies."""
        return not self.private_to or (seat is not None and seat in self.private_to)


@dataclass(frozen=True)
class TokenLogprob:
    token: str
    token_id: int
    logprob: float


@dataclass(frozen=True)
class BehaviorRecord:
    """One attempt of one seat at one turn: what the player saw and produced, and the states
    around it. `accepted` attempts are MARO's behaviors; rejected ones carry the reason."""

    match_id: str
    seat: int
    role: str
    turn: int
    index: int  # the seat's k-th acting turn in the match (0-based)
    attempt: int
    accepted: bool
    action_text: str
    reason: str = ""
    messages: list[dict] = field(default_factory=list)
    completion: str = ""
    logprobs: tuple[TokenLogprob, ...] = ()
    model: str = ""
    snapshot_before: str = ""
    snapshot_after: str = ""
    fallback: bool = False
    id: int | None = None


@dataclass(frozen=True)
class MatchRecord:
    match_id: str
    game_id: str
    seed: int
    params: dict[str, Any]
    status: str  # created | running | finished | aborted
    seats: tuple[SeatRecord, ...]
    outcome: tuple[float, ...] | None = None
    end_reason: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    finished_at: datetime | None = None
    events: tuple[EventRecord, ...] = ()
