"""Every table of the match store in one place: matches, seats, events, behaviors, the lobby and
the arena replicas sharing the store, and the ratings kept beside them. `MatchStore` creates them
all; `RatingBook` reads and writes its own."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

LIVE = ("created", "running")
"""The statuses of a match not yet ended: only these may change, so an end is never overwritten."""


def hash_token(token: str) -> str:
    """What the store keeps of a seat's token: its SHA-256, never the token."""
    return hashlib.sha256(token.encode()).hexdigest()


def now() -> datetime:
    """The time stamps of the store: timezone-aware UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class MatchRow(Base):
    __tablename__ = "matches"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    game_id: Mapped[str] = mapped_column(String(64), index=True)
    seed: Mapped[int] = mapped_column(BigInteger)
    replica: Mapped[str] = mapped_column(Text, default="", index=True)
    params: Mapped[dict] = mapped_column(JSON)
    config: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), index=True)
    outcome: Mapped[list | None] = mapped_column(JSON, nullable=True)
    end_reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_by: Mapped[str] = mapped_column(Text, default="")


class SeatRow(Base):
    __tablename__ = "seats"
    match_id: Mapped[str] = mapped_column(ForeignKey("matches.id"), primary_key=True)
    seat: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(Text, default="")
    bot: Mapped[str] = mapped_column(Text, default="")
    role: Mapped[str] = mapped_column(Text, default="")
    token_hash: Mapped[str] = mapped_column(String(64), default="", index=True)
    principal: Mapped[str] = mapped_column(Text, default="")


class EventRow(Base):
    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    match_id: Mapped[str] = mapped_column(ForeignKey("matches.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    seat: Mapped[int | None] = mapped_column(Integer, nullable=True)
    text: Mapped[str] = mapped_column(Text)
    private_to: Mapped[list] = mapped_column(JSON)
    data: Mapped[dict] = mapped_column(JSON)


class BehaviorRow(Base):
    __tablename__ = "behaviors"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    match_id: Mapped[str] = mapped_column(ForeignKey("matches.id"), index=True)
    seat: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(Text)
    turn: Mapped[int] = mapped_column(Integer)
    index: Mapped[int] = mapped_column(Integer)
    attempt: Mapped[int] = mapped_column(Integer)
    accepted: Mapped[bool] = mapped_column(Boolean)
    fallback: Mapped[bool] = mapped_column(Boolean, default=False)
    action_text: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text, default="")
    messages: Mapped[list] = mapped_column(JSON)
    completion: Mapped[str] = mapped_column(Text, default="")
    logprobs: Mapped[list] = mapped_column(JSON)
    model: Mapped[str] = mapped_column(Text, default="")
    snapshot_before: Mapped[str] = mapped_column(Text, default="")
    snapshot_after: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LobbyRow(Base):
    """An open seat of a live match nobody has taken yet. Any replica may hand it out: taking it
    deletes the row and sets the seat's token hash in one transaction (`Leases.take_seat`)."""

    __tablename__ = "lobby"
    match_id: Mapped[str] = mapped_column(ForeignKey("matches.id"), primary_key=True)
    seat: Mapped[int] = mapped_column(Integer, primary_key=True)
    game_id: Mapped[str] = mapped_column(String(64), index=True)
    replica: Mapped[str] = mapped_column(Text, default="")
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class ReplicaRow(Base):
    """An arena replica serving matches from this store: where clients reach it, and its lease.
    A replica whose heartbeat is older than the lease is taken for dead (`Leases.reap`)."""

    __tablename__ = "replicas"
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    address: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RatingRow(Base):
    __tablename__ = "ratings"
    game_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(64), primary_key=True)
    player: Mapped[str] = mapped_column(String(256), primary_key=True)
    mu: Mapped[float] = mapped_column(Float)
    sigma: Mapped[float] = mapped_column(Float)
    matches: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RatedMatchRow(Base):
    """A match whose result is in `ratings`: the guard that rates each match once."""

    __tablename__ = "rated_matches"
    match_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    rated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
