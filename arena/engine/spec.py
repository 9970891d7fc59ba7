"""A game's declaration: what it is, as data, before any state exists."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Fallback = Literal["forfeit", "default"]


@dataclass(frozen=True)
class GameSpec:
    """What a game is, declared as data before any state exists."""

    id: str
    description: str
    roles: tuple[str, ...]
    min_players: int
    max_players: int
    action_format: str
    fallback: Fallback = "forfeit"
    """What a seat that misses its turn or exhausts its retries gets: `forfeit` ends the match
    against it; `default` plays `Game.default_action` for it (simultaneous phases need this)."""
    outcome_bounds: tuple[float, float] = (-1.0, 1.0)
    teams: tuple[str, ...] = ()
    """Team names when seats win or lose together (their outcomes are then equal)."""
    win_threshold: float = 0.0
    """An outcome above this counts as a win in win-rate statistics."""
    reveal_roles_at_end: bool = True
    """Whether every seat learns every role when the match ends."""

    def __post_init__(self):
        problems = []
        if not self.id or any(c.isspace() for c in self.id):
            problems.append("an id without spaces")
        if not self.roles or any(not r for r in self.roles):
            problems.append("at least one role, none empty")
        if not 1 <= self.min_players <= self.max_players:
            problems.append(f"1 <= min_players <= max_players (got {self.min_players}, {self.max_players})")
        if not self.outcome_bounds[0] < self.outcome_bounds[1]:
            problems.append(f"outcome bounds low < high (got {self.outcome_bounds})")
        if not self.outcome_bounds[0] <= self.win_threshold <= self.outcome_bounds[1]:
            problems.append("a win threshold within the outcome bounds")
        if problems:
            raise ValueError(f"game spec {self.id!r} needs " + "; ".join(problems))
