"""deal_or_no_deal-v1's value heuristic: a cheap guess of a seat's expected outcome in an unfinished state,
for MARO's `game` estimator (the engine's `Game.value` gives the outcome once the match is over)."""

from __future__ import annotations

from maro.arena.engine import heuristic_of
from maro.arena.games.deal_or_no_deal.rules import DealOrNoDeal, DealState


@heuristic_of(DealOrNoDeal)
def value(game: DealOrNoDeal, state: DealState, seat: int) -> float:
    """Predicted share = midpoint of the seat's own latest ask and what the other side's latest
    proposal leaves it (1 and 0 when missing; the offer itself when it exceeds the ask),
    weighted against the no-deal payoff by a deal chance that falls as the deadline nears
    with the gap still open. Equals the outcome at the end."""
    mine = [m.take for m in state.moves if m.kind == "propose" and m.seat == seat]
    theirs = [m.take for m in state.moves if m.kind == "propose" and m.seat != seat]
    ask = game.share(state, seat, mine[-1]) if mine else 1.0
    bid = game.share(state, seat, tuple(c - t for c, t in zip(state.counts, theirs[-1]))) if theirs else 0.0
    predicted = (ask + bid) / 2 if ask >= bid else bid
    elapsed = len(state.moves) / game.params.max_turns
    p_deal = max(0.0, 1.0 - elapsed * min(1.0, max(0.0, ask - bid)))
    return max(-1.0, min(1.0, p_deal * predicted + (1 - p_deal) * game.params.no_deal_payoff))
