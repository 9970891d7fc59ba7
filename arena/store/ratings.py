"""OpenSkill ratings per game, per role and overall, updated once from every finished match."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from statistics import fmean

from openskill.models import PlackettLuce
from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from maro.arena.engine import game_class
from maro.arena.store.records import MatchRecord, SeatRecord
from maro.arena.store.schema import Base, RatedMatchRow, RatingRow, now

OVERALL = "*"
"""The role key of a player's rating over all roles of a game."""


@dataclass(frozen=True)
class RatingEntry:
    game_id: str
    role: str
    player: str
    mu: float
    sigma: float
    ordinal: float
    matches: int


def player_of(seat: SeatRecord) -> str:
    """A seat's rated identity: its principal on a server with keys; on a keyless local server,
    whose one caller is the operator, its name (the service fills it with the bot id when unnamed)."""
    return seat.principal or seat.name or seat.bot or f"seat-{seat.seat}"


def rating_groups(outcome: Sequence[float], team_game: bool) -> tuple[list[list[int]], list[int]]:
    """Seat groups that openskill rates as teams and their ranks (0 best, equal outcomes tie).

    Without teams every seat is its own group. With teams the record holds no team labels, but
    team-mates always share an outcome (`GameSpec.teams`), so a team is a group of equal outcome.
    A draw of a team game (all outcomes equal) is then one group, and nothing is learned from it."""
    if team_game:
        by_value: dict[float, list[int]] = defaultdict(list)
        for seat, value in enumerate(outcome):
            by_value[value].append(seat)
        groups = list(by_value.values())
    else:
        groups = [[seat] for seat in range(len(outcome))]
    values = sorted({outcome[g[0]] for g in groups}, reverse=True)
    return groups, [values.index(outcome[g[0]]) for g in groups]


def finish_order(records: Iterable[MatchRecord]) -> list[MatchRecord]:
    """Finished matches in the order they ended (match id breaks ties), the order ratings replay."""
    done = [r for r in records if _rateable(r)]
    return sorted(done, key=lambda r: (r.finished_at or datetime.min.replace(tzinfo=UTC), r.match_id))


def _rateable(record: MatchRecord) -> bool:
    return record.status == "finished" and record.outcome is not None


def _is_team_game(game_id: str) -> bool:
    return bool(game_class(game_id).spec.teams)


class RatingBook:
    """Ratings in the store's database; the tables are created here too, so any engine works.

    Each finished match is rated twice with the same groups and ranks: once with every seat's
    (game, role, player) rating, once with its (game, "*", player) rating. The role pass rates all
    seats of the match together (not only seats of one role), so a role's rating says how that
    player fares in that role against whatever the other seats were. A key seated several times
    in one match (self-play) is rated as separate openskill players from the same prior and gets
    the mean of their new mu and sigma, counted as one match."""

    def __init__(self, engine: Engine, model: PlackettLuce | None = None,
                 team_game: Callable[[str], bool] = _is_team_game):
        self.engine = engine
        self.model = model or PlackettLuce()
        self.team_game = team_game
        Base.metadata.create_all(engine, tables=[RatingRow.__table__, RatedMatchRow.__table__])

    def update(self, record: MatchRecord) -> bool:
        """Rate a finished match and mark it rated in one transaction; False when the match is
        not finished or was rated before (also by a concurrent writer)."""
        if not _rateable(record):
            return False
        try:
            with Session(self.engine) as db, db.begin():
                if db.get(RatedMatchRow, record.match_id) is not None:
                    return False
                self._rate(db, record)
        except IntegrityError:  # another writer marked the same match first
            return False
        return True

    def rebuild(self, records: Iterable[MatchRecord]) -> int:
        """Forget all ratings and replay the finished matches in finish order, in one
        transaction; returns how many matches were rated."""
        ordered = finish_order(records)
        with Session(self.engine) as db, db.begin():
            db.execute(delete(RatingRow))
            db.execute(delete(RatedMatchRow))
            for record in ordered:
                self._rate(db, record)
        return len(ordered)

    def table(self, game_id: str | None = None, role: str | None = None) -> list[RatingEntry]:
        """Entries filtered by game and role key (None: all; OVERALL: over all roles), best
        ordinal first."""
        query = select(RatingRow)
        if game_id is not None:
            query = query.where(RatingRow.game_id == game_id)
        if role is not None:
            query = query.where(RatingRow.role == role)
        with Session(self.engine) as db:
            entries = [_entry(row) for row in db.scalars(query)]
        return sorted(entries, key=lambda e: (-e.ordinal, e.game_id, e.role, e.player))

    # --- one match -------------------------------------------------------------------------
    def _rate(self, db: Session, record: MatchRecord) -> None:
        assert record.outcome is not None
        db.add(RatedMatchRow(match_id=record.match_id, rated_at=now()))
        db.flush()  # the primary key turns a second rating of this match into an IntegrityError
        groups, ranks = rating_groups(record.outcome, self.team_game(record.game_id))
        seats = sorted(record.seats, key=lambda s: s.seat)
        for key_of in (lambda s: s.role, lambda s: OVERALL):
            keys = [(record.game_id, key_of(s), player_of(s)) for s in seats]
            self._rate_keys(db, keys, groups, ranks)

    def _rate_keys(self, db: Session, keys: list[tuple[str, str, str]], groups: list[list[int]],
                   ranks: list[int]) -> None:
        rows = {key: self._row(db, key) for key in dict.fromkeys(keys)}
        new: dict[tuple[str, str, str], list[tuple[float, float]]] = defaultdict(list)
        if len(groups) > 1:
            teams = [[self.model.rating(mu=rows[keys[s]].mu, sigma=rows[keys[s]].sigma) for s in g] for g in groups]
            rated = self.model.rate(teams, ranks=ranks)
            for group, team in zip(groups, rated):
                for seat, rating in zip(group, team):
                    new[keys[seat]].append((rating.mu, rating.sigma))
        stamp = now()
        for key, row in rows.items():
            if new[key]:
                row.mu, row.sigma = fmean(m for m, _ in new[key]), fmean(s for _, s in new[key])
            row.matches += 1
            row.updated_at = stamp

    def _row(self, db: Session, key: tuple[str, str, str]) -> RatingRow:
        row = db.get(RatingRow, key)
        if row is None:
            prior = self.model.rating()
            row = RatingRow(game_id=key[0], role=key[1], player=key[2], mu=prior.mu, sigma=prior.sigma,
                            matches=0, updated_at=now())
            db.add(row)
        return row


def _entry(row: RatingRow) -> RatingEntry:
    return RatingEntry(game_id=row.game_id, role=row.role, player=row.player, mu=row.mu, sigma=row.sigma,
                       ordinal=row.mu - 3 * row.sigma, matches=row.matches)


def format_table(entries: Sequence[RatingEntry]) -> str:
    """A plain text table for `maro ratings`, rows in the given order."""
    if not entries:
        return "no ratings yet"
    header = ("player", "game", "role", "ordinal", "mu", "sigma", "matches")
    body = [(e.player, e.game_id, e.role, f"{e.ordinal:.2f}", f"{e.mu:.2f}", f"{e.sigma:.2f}", str(e.matches))
            for e in entries]
    widths = [max(len(row[i]) for row in (header, *body)) for i in range(len(header))]
    numeric = {3, 4, 5, 6}

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i in numeric else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, body)])
