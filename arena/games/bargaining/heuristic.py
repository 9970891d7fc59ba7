"""bargaining-v1's value heuristic: a cheap guess of a seat's expected outcome in an unfinished state,
for MARO's `game` estimator (the engine's `Game.value` gives the outcome once the match is over)."""

from __future__ import annotations

from maro.arena.engine import heuristic_of
from maro.arena.games.bargaining.rules import BUYER, SELLER, Bargaining, BargainingState


@heuristic_of(Bargaining)
def value(game: Bargaining, state: BargainingState, seat: int) -> float:
    """Predicted deal price = midpoint of the latest ask and bid (reservation values when
    missing), discounted by the chance of no deal, which grows as the deadline nears with
    the gap between ask and bid still open."""
    asks = [m.price for m in state.moves if m.kind == "offer" and m.seat == SELLER]
    bids = [m.price for m in state.moves if m.kind == "offer" and m.seat == BUYER]
    ask = asks[-1] if asks else state.value
    bid = bids[-1] if bids else state.cost
    surplus = state.value - state.cost
    gap = max(0.0, (ask - bid) / surplus)
    elapsed = state.turns / (2 * game.params.max_rounds)
    p_deal = max(0.0, 1.0 - elapsed * min(1.0, gap))
    share = game.payoffs(state, (ask + bid) / 2)[seat]
    return max(-1.0, min(1.0, p_deal * share))
