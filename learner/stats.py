"""What a batch of matches says about the seats of interest: the one place that reads finished
matches and behaviors into outcomes and valid-action counts (the self-play loop's iteration lines,
the evaluation's sides, the demo's batches)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from maro.arena.engine import game_class
from maro.arena.store.matches import MatchStore
from maro.arena.store.records import MatchRecord, SeatRecord

Side = Callable[[MatchRecord, SeatRecord], str | None]
"""Which side a seat plays for (a label), or None for seats that are not counted."""


@dataclass
class SideStats:
    outcomes: list[tuple[MatchRecord, SeatRecord, float]] = field(default_factory=list)
    """(match, seat, outcome) for the side's seats of finished matches."""
    attempts: int = 0
    """Model replies the side's seats sent (accepted or refused); bots send none."""
    accepted: int = 0

    @property
    def valid_rate(self) -> float:
        return self.accepted / self.attempts if self.attempts else 0.0


def seat_stats(store: MatchStore, match_ids: Sequence[str], side: Side) -> tuple[list[MatchRecord], dict[str, SideStats]]:
    """The matches (those the store has) and, per side label, its outcomes and attempts."""
    matches = [m for m in (store.get_match(i, with_events=False) for i in match_ids) if m is not None]
    owner = {(m.match_id, s.seat): label for m in matches for s in m.seats if (label := side(m, s))}
    sides: dict[str, SideStats] = defaultdict(SideStats)
    for m in matches:
        if m.status == "finished" and m.outcome is not None:
            for s in m.seats:
                label = owner.get((m.match_id, s.seat))
                if label:
                    sides[label].outcomes.append((m, s, m.outcome[s.seat]))
    for b in store.behaviors([m.match_id for m in matches]):
        label = owner.get((b.match_id, b.seat))
        if label and b.messages:
            sides[label].attempts += 1
            sides[label].accepted += int(b.accepted)
    return matches, dict(sides)


def means(groups: dict[str, list[float]]) -> dict[str, float]:
    return {k: sum(v) / len(v) for k, v in sorted(groups.items()) if v}


def iteration_stats(store: MatchStore, match_ids: Sequence[str], current: str) -> dict[str, Any]:
    """What the current adapter did: attempts, valid rate, outcome and win rate per role.

    `outcome/<game>/<role>` over all its seats; `vs_bot/...` and `vs_past/...` per opponent kind.
    """
    name = f"model:{current}"
    matches, sides = seat_stats(store, match_ids, lambda _m, s: "me" if s.name == name else None)
    mine = sides.get("me", SideStats())
    outcomes: dict[str, list[float]] = defaultdict(list)
    wins: dict[str, list[float]] = defaultdict(list)
    for m, s, z in mine.outcomes:
        threshold = game_class(m.game_id).spec.win_threshold
        for key in (f"{m.game_id}/{s.role}", f"{_opponents(m, name)}/{m.game_id}/{s.role}"):
            outcomes[key].append(z)
            wins[key].append(float(z > threshold))
    seats = [z for _m, _s, z in mine.outcomes]
    return {
        "matches": len(matches),
        "finished": sum(m.status == "finished" for m in matches),
        "attempts": mine.attempts,
        "valid_rate": mine.valid_rate,
        "mean_outcome": sum(seats) / len(seats) if seats else None,
        "outcome": means(outcomes),
        "win_rate": means(wins),
        "seats": {k: len(v) for k, v in sorted(outcomes.items())},
    }


def _opponents(m: MatchRecord, name: str) -> str:
    others = {s.name for s in m.seats if s.name != name}
    if any(s.kind == "bot" for s in m.seats):
        return "vs_bot"
    return "vs_past" if others else "self"
