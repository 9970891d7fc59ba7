"""werewolf-v1 rule data: parameters, typed records, the state, the deal and the pure tallies."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from maro.arena.engine import Params, State

ROLES = ("werewolf", "villager", "seer", "doctor")
WOLF, VILLAGER, SEER, DOCTOR = ROLES
TEAMS = ("werewolves", "village")
Phase = Literal["night_chat", "night", "day_talk", "day_vote", "over"]
SAY_LIMIT = 200


class WerewolfParams(Params):
    """Parameters of werewolf-v1."""

    players: int = Field(6, ge=5, le=9)
    """Seats, 5 to 9."""
    werewolves: int | None = Field(None, ge=1, le=4)
    """Werewolves dealt; None means 1 for 5-6 players and 2 for 7-9."""
    max_days: int = Field(4, ge=1, le=10)
    """The match ends in a draw (every outcome 0) when day `max_days` ends undecided."""
    night_chat_turns: int = Field(1, ge=0, le=3)
    """Pack chat turns per living werewolf each night, in seat order; skipped for a lone wolf."""
    day_discussion_rounds: int = Field(1, ge=0, le=3)
    """Round-robin speaking rounds of the living seats each day before the vote."""
    reveal_on_death: bool = True
    """Whether a dead seat's role is announced at once (all roles are revealed at the end)."""
    doctor_repeat: bool = False
    """Whether the doctor may protect the same seat on two nights in a row."""

    @model_validator(mode="after")
    def _check(self) -> WerewolfParams:
        if not 5 <= self.players <= 9:
            raise ValueError("players must be from 5 to 9")
        if not 1 <= self.wolf_count or 2 * self.wolf_count >= self.players:
            raise ValueError("need at least 1 werewolf and fewer werewolves than other seats")
        if self.max_days < 1 or not 0 <= self.night_chat_turns <= 3 or not 0 <= self.day_discussion_rounds <= 3:
            raise ValueError("need max_days >= 1, night_chat_turns and day_discussion_rounds from 0 to 3")
        return self

    @property
    def wolf_count(self) -> int:
        if self.werewolves is not None:
            return self.werewolves
        return 1 if self.players <= 6 else 2


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Speech(Record):
    """One `[Say]`: public in the day, to the pack only at night."""

    day: int
    seat: int
    pack: bool
    text: str


class Night(Record):
    """What happened in one night; only `died` is public."""

    day: int
    picks: tuple[tuple[int, int], ...]
    """(werewolf seat, chosen victim) for each living werewolf."""
    target: int
    protected: int | None = None
    inspected: int | None = None
    died: int | None = None


class DayVote(Record):
    """One day's public vote; a ballot target of None is an abstention."""

    day: int
    ballots: tuple[tuple[int, int | None], ...]
    eliminated: int | None = None


class WerewolfState(State):
    """Full state, every role included; leaves the engine only through `view`."""

    roles: tuple[str, ...]
    alive: tuple[bool, ...]
    phase: Phase
    day: int = 1
    """Night d comes before day d."""
    turn: int = 0
    """Speaking turns taken in the current chat or discussion phase."""
    speeches: tuple[Speech, ...] = ()
    nights: tuple[Night, ...] = ()
    votes: tuple[DayVote, ...] = ()
    winner: str | None = None

    def living(self) -> list[int]:
        return [s for s, up in enumerate(self.alive) if up]

    def wolves(self, living_only: bool = True) -> list[int]:
        return [s for s, r in enumerate(self.roles) if r == WOLF and (self.alive[s] or not living_only)]

    def seat_of(self, role: str) -> int | None:
        seats = [s for s, r in enumerate(self.roles) if r == role]
        return seats[0] if seats else None

    def deaths(self) -> list[tuple[int, int, str]]:
        """(seat, day, cause) in the order they happened."""
        out = []
        for day in range(1, self.day + 1):
            out += [(n.died, day, "night") for n in self.nights if n.day == day and n.died is not None]
            out += [(v.eliminated, day, "vote") for v in self.votes if v.day == day and v.eliminated is not None]
        return out


def team_of(role: str) -> str:
    return TEAMS[0] if role == WOLF else TEAMS[1]


def deal(params: WerewolfParams, rng: random.Random) -> tuple[str, ...]:
    roles = [WOLF] * params.wolf_count + [SEER, DOCTOR]
    roles += [VILLAGER] * (params.players - len(roles))
    rng.shuffle(roles)
    return tuple(roles)


def plurality(targets: Iterable[int | None], tie: Literal["lowest", "none"]) -> int | None:
    """The most chosen seat (None ballots ignored); a tie for the top goes to the lowest seat
    (the pack's kill) or to nobody (the day vote)."""
    counts = Counter(t for t in targets if t is not None)
    if not counts:
        return None
    top = max(counts.values())
    leaders = sorted(s for s, c in counts.items() if c == top)
    if len(leaders) > 1 and tie == "none":
        return None
    return leaders[0]


def winner(state: WerewolfState) -> str | None:
    wolves = len(state.wolves())
    others = len(state.living()) - wolves
    if wolves == 0:
        return "village"
    return "werewolves" if wolves >= others else None


def next_night_phase(state: WerewolfState, params: WerewolfParams) -> Phase:
    """The pack chats only when at least two werewolves live: a lone wolf has nobody to tell."""
    return "night_chat" if params.night_chat_turns and len(state.wolves()) >= 2 else "night"
