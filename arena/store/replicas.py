"""The replicas sharing one store and the lobby they share: leases renewed by heartbeats, replicas
reaped once their lease runs out, and open seats that exactly one caller takes."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, delete, insert, select, update

from maro.arena.store.schema import LIVE, LobbyRow, MatchRow, ReplicaRow, SeatRow, hash_token, now

_MATCHES, _SEATS, _LOBBY, _REPLICAS = MatchRow.__table__, SeatRow.__table__, LobbyRow.__table__, ReplicaRow.__table__


@dataclass(frozen=True)
class Replica:
    id: str
    address: str
    started_at: datetime
    heartbeat_at: datetime


@dataclass(frozen=True)
class TakenSeat:
    """A lobby seat handed out: its match, seat number, the new token and where the match is played."""

    match_id: str
    seat: int
    token: str
    replica: str
    address: str


class Leases:
    """The replicas' leases and the lobby, over the match store's engine and write lock."""

    def __init__(self, engine: Engine, lock: threading.Lock):
        self.engine = engine
        self._lock = lock

    def take_seat(self, game_id: str, replica: str | None = None) -> TakenSeat | None:
        """Take the oldest open seat of a live `game_id` match on a live replica (only `replica`'s
        when given) with a new token, whose hash replaces the seat's in the same transaction. Two
        replicas taking at once get different seats: a row deleted by another is skipped."""
        query = (select(_LOBBY.c.match_id, _LOBBY.c.seat, _LOBBY.c.replica, _REPLICAS.c.address)
                 .join(_REPLICAS, _REPLICAS.c.id == _LOBBY.c.replica).where(_LOBBY.c.game_id == game_id)
                 .order_by(_LOBBY.c.opened_at, _LOBBY.c.match_id, _LOBBY.c.seat).limit(8))
        if replica is not None:
            query = query.where(_LOBBY.c.replica == replica)
        with self._lock:
            for _ in range(8):
                with self.engine.begin() as db:
                    rows = db.execute(query).all()
                    if not rows:
                        return None
                    for match_id, seat, owner, address in rows:
                        taken = db.execute(delete(_LOBBY).where(_LOBBY.c.match_id == match_id, _LOBBY.c.seat == seat))
                        if taken.rowcount == 1:
                            token = secrets.token_urlsafe(24)
                            db.execute(update(_SEATS).where(_SEATS.c.match_id == match_id, _SEATS.c.seat == seat)
                                       .values(token_hash=hash_token(token)))
                            return TakenSeat(match_id, seat, token, owner, address)
        return None

    def lobby(self, match_ids: Sequence[str] | None = None) -> list[tuple[str, str, int]]:
        """(game id, match id, seat) of the open seats (of `match_ids` when given), oldest first."""
        query = select(_LOBBY.c.game_id, _LOBBY.c.match_id, _LOBBY.c.seat).order_by(
            _LOBBY.c.game_id, _LOBBY.c.opened_at, _LOBBY.c.match_id, _LOBBY.c.seat)
        if match_ids is not None:
            query = query.where(_LOBBY.c.match_id.in_(list(match_ids)))
        with self.engine.connect() as db:
            return [tuple(row) for row in db.execute(query)]

    def heartbeat(self, replica: str, address: str, *, register: bool = False) -> bool:
        """Renew `replica`'s lease. False when it has none: another replica took it for dead and
        aborted its matches. With `register`, a replica without a lease gets one (on start)."""
        stamp = now()
        with self._lock, self.engine.begin() as db:
            renewed = db.execute(update(_REPLICAS).where(_REPLICAS.c.id == replica)
                                 .values(address=address, heartbeat_at=stamp)).rowcount == 1
            if not renewed and register:
                db.execute(insert(_REPLICAS).values(id=replica, address=address, started_at=stamp, heartbeat_at=stamp))
                return True
            return renewed

    def leave(self, replica: str) -> None:
        """A replica stopping: its matches are aborted already; drop its lease and lobby seats."""
        with self._lock, self.engine.begin() as db:
            db.execute(delete(_LOBBY).where(_LOBBY.c.replica == replica))
            db.execute(delete(_REPLICAS).where(_REPLICAS.c.id == replica))

    def reap(self, lease_s: float, reason: str) -> dict[str, int]:
        """Replicas whose heartbeat is older than `lease_s`: their live matches are marked aborted
        with `reason`, their lobby seats and leases removed. Returns matches aborted per replica."""
        cutoff = now() - timedelta(seconds=lease_s)
        reaped: dict[str, int] = {}
        with self._lock, self.engine.begin() as db:
            dead = db.scalars(select(_REPLICAS.c.id).where(_REPLICAS.c.heartbeat_at < cutoff)).all()
            for replica in dead:
                reaped[replica] = abort_replica(db, replica, reason)
                db.execute(delete(_REPLICAS).where(_REPLICAS.c.id == replica, _REPLICAS.c.heartbeat_at < cutoff))
        return reaped

    def replicas(self) -> list[Replica]:
        with self.engine.connect() as db:
            return [Replica(*row) for row in db.execute(select(
                _REPLICAS.c.id, _REPLICAS.c.address, _REPLICAS.c.started_at, _REPLICAS.c.heartbeat_at,
            ).order_by(_REPLICAS.c.id))]

    def owner(self, match_id: str) -> tuple[str, str | None] | None:
        """A live match's replica and that replica's address (None while it has no lease);
        None when the match is not live."""
        with self.engine.connect() as db:
            row = db.execute(select(_MATCHES.c.replica, _REPLICAS.c.address)
                             .join(_REPLICAS, _REPLICAS.c.id == _MATCHES.c.replica, isouter=True)
                             .where(_MATCHES.c.id == match_id, _MATCHES.c.status.in_(LIVE))).first()
            return None if row is None else (row[0], row[1])


def abort_replica(db: Connection, replica: str, reason: str) -> int:
    """Mark `replica`'s live matches aborted with `reason` and drop their lobby seats."""
    live = select(_MATCHES.c.id).where(_MATCHES.c.status.in_(LIVE), _MATCHES.c.replica == replica)
    db.execute(delete(_LOBBY).where(_LOBBY.c.match_id.in_(live)))
    return db.execute(update(_MATCHES).where(_MATCHES.c.status.in_(LIVE), _MATCHES.c.replica == replica)
                      .values(status="aborted", end_reason=reason, finished_at=now())).rowcount
