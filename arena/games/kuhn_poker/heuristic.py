"""kuhn_poker-v1's value heuristic: a cheap guess of a seat's expected outcome in an unfinished state,
for MARO's `game` estimator (the engine's `Game.value` gives the outcome once the match is over)."""

from __future__ import annotations

from maro.arena.engine import heuristic_of
from maro.arena.games.kuhn_poker.rules import KuhnPoker, KuhnState

WIN_CHANCE = (0.0, 0.5, 1.0)
"""Chance that a card beats the unseen other card: the heuristic's only belief."""


@heuristic_of(KuhnPoker)
def value(game: KuhnPoker, state: KuhnState, seat: int) -> float:
    """Chips won so far plus the current hand's expectation from the seat's own card alone:
    win the opponent's stake with the card's chance of being higher (Jack 0, Queen 1/2,
    King 1), lose the own stake otherwise; an open bet counts as called (stakes of 2), except
    that the seat facing it can fold for -1. Scaled like the outcome; equals it at the end."""
    hand = state.hand
    p = WIN_CHANCE[hand.cards[seat]]
    if hand.to_call():
        current = 4 * p - 2 if hand.actor() != seat else max(-1.0, 4 * p - 2)
    else:
        current = p * hand.put_in(1 - seat) - (1 - p) * hand.put_in(seat)
    net = state.net if seat == 0 else -state.net
    return max(-1.0, min(1.0, (net + current) / (2 * game.params.rounds)))
