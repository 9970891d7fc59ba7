"""werewolf-v1's value heuristic: a cheap guess of a seat's expected outcome in an unfinished state,
for MARO's `game` estimator (the engine's `Game.value` gives the outcome once the match is over)."""

from __future__ import annotations

from maro.arena.engine import heuristic_of
from maro.arena.games.werewolf.rules import Werewolf, WerewolfState, team_of


@heuristic_of(Werewolf)
def value(game: Werewolf, state: WerewolfState, seat: int) -> float:
    """Village estimate p = (share of the wolves already dead + head-count margin (v-w)/(v+w)) / 2,
    plus 0.1 x the share of the latest day's ballots that fell on still-living wolves (suspicion),
    as 2p-1 shrunk toward the draw as the days run out; the werewolves get its negative.
    Equals the outcome once the match is over."""
    w, v = len(state.wolves()), len(state.living()) - len(state.wolves())
    p = 0.5 * (1 - w / game.params.wolf_count) + 0.5 * (v - w) / (v + w)
    if state.votes:
        cast = [t for _, t in state.votes[-1].ballots if t is not None]
        p += 0.1 * sum(t in state.wolves() for t in cast) / max(1, len(cast))
    left = (game.params.max_days - state.day + 1) / game.params.max_days
    village = max(-1.0, min(1.0, (2 * min(1.0, p) - 1) * (0.5 + 0.5 * left)))
    return village if team_of(state.roles[seat]) == "village" else -village
