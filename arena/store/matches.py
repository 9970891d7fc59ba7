"""The match store: matches, seats, events and behaviors in SQL (SQLite file by default)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection, bindparam, create_engine, delete, event, func, insert, inspect, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from maro.arena.match.inputs import display_name
from maro.arena.store.records import BehaviorRecord, EventRecord, MatchRecord, SeatRecord, TokenLogprob
from maro.arena.store.replicas import Leases, abort_replica
from maro.arena.store.schema import LIVE, Base, BehaviorRow, EventRow, LobbyRow, MatchRow, SeatRow, hash_token, now


def database_url(target: str | Path) -> str:
    """A database URL as given, or a SQLite URL for a file path."""
    text = str(target)
    if "://" in text:
        return text
    path = Path(text).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


class MatchStore:
    """Durable record of every match; one instance per process, safe to share across threads."""

    def __init__(self, target: str | Path):
        self.url = database_url(target)
        self.engine = create_engine(self.url, connect_args=self._connect_args())
        if self.url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        _create_tables(self.engine)
        self._lock = threading.Lock()
        self.leases = Leases(self.engine, self._lock)
        """The replicas' leases and the lobby they share (`replicas.py`)."""
        self._group: list[tuple[tuple, asyncio.Future]] = []
        self._group_loop: asyncio.AbstractEventLoop | None = None
        self._committing = False

    @property
    def networked(self) -> bool:
        """Whether writes cross a network (any database but a local SQLite file)."""
        return not self.url.startswith("sqlite")

    async def run(self, call, *args, **kwargs):
        """A store call from async code. To a networked database (Postgres) it leaves the event
        loop, so a slow round trip holds up only its caller; a local SQLite file is written in
        place, since a thread hop costs more there than the write (docs/benchmarks.md: per-turn
        p50 at 10 matches 23 ms with every write in a thread, 7 ms in place)."""
        if not self.networked:
            return call(*args, **kwargs)
        return await asyncio.to_thread(call, *args, **kwargs)

    @property
    def shown_url(self) -> str:
        """The URL as logs may show it: without its password."""
        return make_url(self.url).render_as_string(hide_password=True)

    def _connect_args(self) -> dict:
        return {"check_same_thread": False} if self.url.startswith("sqlite") else {}

    def close(self) -> None:
        self.engine.dispose()

    # --- writes ----------------------------------------------------------------------------
    # Core statements, not ORM objects: one executemany per table and one short transaction
    # per call keep the per-action write cheap; the hot path is `append`, once per step.
    def create_match(self, match: MatchRecord, token_hashes: dict[int, str] | None = None,
                     replica: str = "", created_by: str = "", open_seats: Sequence[int] = ()) -> None:
        """Record a new match; its `open_seats` go to the lobby in the same transaction."""
        token_hashes = token_hashes or {}
        seats = [dict(match_id=match.match_id, seat=s.seat, kind=s.kind, name=store_name(s.name), bot=_text(s.bot),
                      role=s.role, token_hash=token_hashes.get(s.seat, ""), principal=s.principal)
                 for s in match.seats]
        with self._lock, self.engine.begin() as db:
            db.execute(_INSERT_MATCH, dict(
                id=match.match_id, game_id=match.game_id, seed=match.seed, params=match.params,
                config=match.config, status=match.status, outcome=None, end_reason="", created_at=now(),
                finished_at=None, replica=replica, created_by=created_by,
            ))
            if seats:
                db.execute(_INSERT_SEATS, seats)
            if open_seats:
                db.execute(insert(_LOBBY), [dict(match_id=match.match_id, seat=seat, game_id=match.game_id,
                                                 replica=replica, opened_at=now()) for seat in open_seats])

    def set_roles(self, match_id: str, roles: Sequence[str], events: Iterable[EventRecord] = ()) -> None:
        """Store each seat's role, with the events of the initial state in the same transaction."""
        with self._lock, self.engine.begin() as db:
            db.execute(_SET_ROLE, [dict(m=match_id, s=seat, role=role) for seat, role in enumerate(roles)])
            _insert_events(db, match_id, events)

    def set_seat_player(self, match_id: str, seat: int, name: str, principal: str = "") -> None:
        """The display name and rated identity of the player that joined a seat."""
        with self._lock, self.engine.begin() as db:
            db.execute(update(_SEATS).where(_SEATS.c.match_id == match_id, _SEATS.c.seat == seat)
                       .values(name=store_name(name), principal=principal))

    def abort_unfinished(self, reason: str, replica: str = "") -> int:
        """Mark the matches of `replica` still created or running as aborted; returns how many."""
        with self._lock, self.engine.begin() as db:
            return abort_replica(db, replica, reason)

    def set_status(self, match_id: str, status: str) -> None:
        """Move a live match on (`created` -> `running`); a match already ended keeps its end."""
        with self._lock, self.engine.begin() as db:
            _check_found(db, db.execute(_SET_STATUS, dict(m=match_id, status=status)), match_id)

    def append(self, match_id: str, events: Iterable[EventRecord] = (), behaviors: Iterable[BehaviorRecord] = (),
               finish: tuple[Sequence[float], str] | None = None) -> None:
        """Write events and behaviors of one step in one transaction; with `finish` (outcome,
        reason), the match is marked finished in that transaction too."""
        rows = [_behavior_row(b) for b in behaviors]
        with self._lock, self.engine.begin() as db:
            _insert_events(db, match_id, events)
            if rows:
                db.execute(_INSERT_BEHAVIORS, rows)
            if finish is not None:
                _finish(db, match_id, finish[0], finish[1], "finished")

    async def append_grouped(self, match_id: str, events: Iterable[EventRecord] = (),
                             behaviors: Iterable[BehaviorRecord] = (),
                             finish: tuple[Sequence[float], str] | None = None) -> None:
        """`append` from async code, with group commit: the steps of all matches that become
        ready while a transaction is being written share the next one, so a busy arena pays one
        commit (one round trip to Postgres) for many actions. Returns once this step is
        committed, so an action is still durable before it is acknowledged."""
        loop = asyncio.get_running_loop()
        if self._group_loop not in (None, loop):  # a store shared with another event loop: no grouping
            return await self.run(self.append, match_id, events, behaviors, finish)
        self._group_loop = loop
        done = loop.create_future()
        self._group.append(((match_id, tuple(events), tuple(behaviors), finish), done))
        if not self._committing:
            self._committing = True
            loop.create_task(self._commit_groups())
        await done

    async def _commit_groups(self) -> None:
        try:
            while self._group:
                group, self._group = self._group, []
                try:
                    await self.run(self._append_many, [step for step, _ in group])
                except Exception:  # one step's bad write must fail that step only: retry them one by one
                    for step, done in group:
                        try:
                            await self.run(self.append, *step)
                        except Exception as exc:
                            _settle(done, exc)
                        else:
                            _settle(done)
                else:
                    for _, done in group:
                        _settle(done)
        finally:
            self._committing = False

    def _append_many(self, steps: Sequence[tuple]) -> None:
        """Several matches' steps (`append`'s arguments) in one transaction."""
        events = [row for match_id, step_events, _, _ in steps for row in _event_rows(match_id, step_events)]
        behaviors = [_behavior_row(b) for _, _, step_behaviors, _ in steps for b in step_behaviors]
        with self._lock, self.engine.begin() as db:
            if events:
                db.execute(_INSERT_EVENTS, events)
            if behaviors:
                db.execute(_INSERT_BEHAVIORS, behaviors)
            for match_id, _, _, finish in steps:
                if finish is not None:
                    _finish(db, match_id, finish[0], finish[1], "finished")

    def finish(self, match_id: str, outcome: Sequence[float], reason: str, status: str = "finished") -> None:
        with self._lock, self.engine.begin() as db:
            _finish(db, match_id, outcome, reason, status)

    # --- reads -----------------------------------------------------------------------------
    def seat_for_token(self, match_id: str, token: str) -> int | None:
        with Session(self.engine) as db:
            row = db.scalars(select(SeatRow).where(
                SeatRow.match_id == match_id, SeatRow.token_hash == hash_token(token), SeatRow.kind.in_(("remote", "open"))
            )).first()
            return None if row is None else row.seat

    def get_match(self, match_id: str, *, with_events: bool = True) -> MatchRecord | None:
        with Session(self.engine) as db:
            row = db.get(MatchRow, match_id)
            if row is None:
                return None
            return self._record(db, row, with_events)

    def list_matches(self, *, game_id: str | None = None, status: str | None = None,
                     since: datetime | None = None, until: datetime | None = None,
                     limit: int | None = None, newest_first: bool = False) -> list[MatchRecord]:
        """Matches by creation time (oldest first unless `newest_first`), filtered."""
        with Session(self.engine) as db:
            order = MatchRow.created_at.desc() if newest_first else MatchRow.created_at
            query = select(MatchRow).order_by(order, MatchRow.id)
            if game_id:
                query = query.where(MatchRow.game_id == game_id)
            if status:
                query = query.where(MatchRow.status == status)
            if since is not None:
                query = query.where(MatchRow.created_at >= since)
            if until is not None:
                query = query.where(MatchRow.created_at < until)
            if limit:
                query = query.limit(limit)
            return [self._record(db, row, False) for row in db.scalars(query)]

    def behaviors(self, match_ids: Sequence[str]) -> list[BehaviorRecord]:
        with Session(self.engine) as db:
            rows = db.scalars(select(BehaviorRow).where(BehaviorRow.match_id.in_(list(match_ids)))
                              .order_by(BehaviorRow.match_id, BehaviorRow.id))
            return [_behavior_record(r) for r in rows]

    @staticmethod
    def _record(db: Session, row: MatchRow, with_events: bool) -> MatchRecord:
        seats = tuple(
            SeatRecord(seat=s.seat, kind=s.kind, name=s.name, role=s.role, bot=s.bot, principal=s.principal)
            for s in db.scalars(select(SeatRow).where(SeatRow.match_id == row.id).order_by(SeatRow.seat))
        )
        events: tuple[EventRecord, ...] = ()
        if with_events:
            events = tuple(
                EventRecord(seq=e.seq, kind=e.kind, text=e.text, seat=e.seat, private_to=tuple(e.private_to), data=e.data)
                for e in db.scalars(select(EventRow).where(EventRow.match_id == row.id).order_by(EventRow.seq))
            )
        return MatchRecord(
            match_id=row.id, game_id=row.game_id, seed=row.seed, params=row.params, status=row.status,
            seats=seats, outcome=None if row.outcome is None else tuple(row.outcome), end_reason=row.end_reason,
            config=row.config, created_at=row.created_at, finished_at=row.finished_at, events=events,
        )


_MATCHES, _SEATS, _EVENTS, _BEHAVIORS = (MatchRow.__table__, SeatRow.__table__, EventRow.__table__,
                                         BehaviorRow.__table__)
_LOBBY = LobbyRow.__table__
# Built once: a statement object caches its compiled form, so the hot path skips rebuilding it.
_INSERT_MATCH, _INSERT_SEATS = insert(_MATCHES), insert(_SEATS)
_INSERT_EVENTS, _INSERT_BEHAVIORS = insert(_EVENTS), insert(_BEHAVIORS)
_SET_ROLE = update(_SEATS).where(_SEATS.c.match_id == bindparam("m"), _SEATS.c.seat == bindparam("s"))
_SET_STATUS = update(_MATCHES).where(_MATCHES.c.id == bindparam("m"), _MATCHES.c.status.in_(LIVE))


def _event_rows(match_id: str, events: Iterable[EventRecord]) -> list[dict]:
    return [dict(match_id=match_id, seq=e.seq, kind=e.kind, seat=e.seat, text=_text(e.text),
                 private_to=list(e.private_to), data=dict(e.data)) for e in events]


def _insert_events(db: Connection, match_id: str, events: Iterable[EventRecord]) -> None:
    if rows := _event_rows(match_id, events):
        db.execute(_INSERT_EVENTS, rows)


def _settle(done: asyncio.Future, exc: BaseException | None = None) -> None:
    if done.done():  # its waiter is gone (cancelled); nothing to tell
        return
    if exc is None:
        done.set_result(None)
    else:
        done.set_exception(exc)


def _finish(db: Connection, match_id: str, outcome: Sequence[float], reason: str, status: str) -> None:
    """End a live match; one another replica ended already (taken for dead) keeps that end."""
    _check_found(db, db.execute(_SET_STATUS, dict(m=match_id, status=status, outcome=list(outcome), end_reason=reason,
                                                  finished_at=now())), match_id)
    db.execute(delete(_LOBBY).where(_LOBBY.c.match_id == match_id))


def _check_found(db: Connection, result, match_id: str) -> None:
    """A write that changed no row: an unknown match raises KeyError; an ended one is left as it is."""
    if result.rowcount == 0 and db.execute(select(func.count()).select_from(_MATCHES)
                                           .where(_MATCHES.c.id == match_id)).scalar() == 0:
        raise KeyError(match_id)


def store_name(name: str) -> str:
    """A player's name as the store keeps it: cleaned of control characters, cut short."""
    return display_name(name)


def _text(value: str) -> str:
    """Postgres text cannot hold NUL; clients and models can send it. Drop it everywhere."""
    return value.replace("\x00", "") if "\x00" in value else value


_ADDED_COLUMNS = {"matches": ("created_by",), "seats": ("principal",)}
"""Columns added after the first release: stores created before them get them on open."""


def _create_tables(engine, attempts: int = 5) -> None:
    """Create what is missing. Replicas (or a host's workers) starting together race to create
    the same tables; the loser's statement fails, and its next look finds them there."""
    for attempt in range(attempts):
        try:
            Base.metadata.create_all(engine)
            _add_missing_columns(engine)
            return
        except DBAPIError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


def _add_missing_columns(engine) -> None:
    for table, columns in _ADDED_COLUMNS.items():
        present = {c["name"] for c in inspect(engine).get_columns(table)}
        for column in columns:
            if column in present:
                continue
            try:
                with engine.begin() as db:
                    db.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} TEXT NOT NULL DEFAULT ''"))
            except DBAPIError:  # another replica added it first
                if column not in {c["name"] for c in inspect(engine).get_columns(table)}:
                    raise


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _behavior_row(b: BehaviorRecord) -> dict:
    return dict(
        match_id=b.match_id, seat=b.seat, role=b.role, turn=b.turn, index=b.index, attempt=b.attempt,
        accepted=b.accepted, fallback=b.fallback, action_text=_text(b.action_text), reason=_text(b.reason),
        messages=list(b.messages), completion=_text(b.completion),
        logprobs=[[t.token, t.token_id, t.logprob] for t in b.logprobs], model=_text(b.model),
        snapshot_before=b.snapshot_before, snapshot_after=b.snapshot_after, created_at=now(),
    )


def _behavior_record(r: BehaviorRow) -> BehaviorRecord:
    return BehaviorRecord(
        id=r.id, match_id=r.match_id, seat=r.seat, role=r.role, turn=r.turn, index=r.index, attempt=r.attempt,
        accepted=r.accepted, fallback=r.fallback, action_text=r.action_text, reason=r.reason,
        messages=list(r.messages), completion=r.completion,
        logprobs=tuple(TokenLogprob(t[0], int(t[1]), float(t[2])) for t in r.logprobs), model=r.model,
        snapshot_before=r.snapshot_before, snapshot_after=r.snapshot_after,
    )


