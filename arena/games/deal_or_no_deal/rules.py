"""deal_or_no_deal-v1: two negotiators with private item values divide a pool (Lewis et al. 2017)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from itertools import product
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

import maro.arena.games.deal_or_no_deal.text as text
from maro.arena.engine import Event, Game, GameError, GameSpec, Params, State, register, view_entry
from maro.arena.games.deal_or_no_deal.text import ITEMS, describe

ROLES = ("negotiator_a", "negotiator_b")
Triple = tuple[int, int, int]


ItemCount = Annotated[int, Field(ge=3, le=12)]


class DealParams(Params):
    """Parameters of deal_or_no_deal-v1."""

    total_items: tuple[ItemCount, ItemCount] = (5, 7)
    """The pool holds this many items in all (drawn in the range), at least one of each type."""
    total_value: int = Field(10, ge=2, le=30)
    """What the whole pool is worth to each negotiator under its private values."""
    max_turns: int = Field(10, ge=1, le=30)
    """Deadline: moves of both sides together; no deal when they run out."""
    no_deal_payoff: float = Field(0.0, ge=-1.0, lt=0.5)
    """Both sides' outcome without a deal; below 0.5 so that it is worse than a fair split."""

    @model_validator(mode="after")
    def _check(self) -> DealParams:
        lo, hi = self.total_items
        if not 3 <= lo <= hi <= 12:
            raise ValueError("total_items must satisfy 3 <= low <= high <= 12 (one of each type at least)")
        if not 2 <= self.total_value <= 30 or self.max_turns < 1:
            raise ValueError("total_value must be from 2 to 30 and max_turns at least 1")
        if not -1.0 <= self.no_deal_payoff < 0.5:
            raise ValueError("no_deal_payoff must be in [-1, 0.5): no deal must be worse than a fair split")
        return self


class Move(BaseModel):
    """One public move: a proposal (what the proposer takes), an acceptance or a walk-away."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seat: int
    kind: str  # "propose" | "accept" | "walk"
    take: Triple | None = None


class DealState(State):
    """Full state, both sides' values included; leaves the engine only through `view`."""

    counts: Triple
    values: tuple[Triple, Triple]
    moves: tuple[Move, ...] = ()
    deal: tuple[Triple, Triple] | None = None
    """What each seat gets, once a proposal is accepted."""

    def standing(self) -> Move | None:
        return self.moves[-1] if self.moves and self.moves[-1].kind == "propose" else None


def named(triple: tuple[int, ...]) -> dict[str, int]:
    return dict(zip(ITEMS, triple))


def values_phrase(values: tuple[int, ...]) -> str:
    """How a seat's values are written in its private event; the period ends the literal."""
    return "Your values: " + " ".join(f"{k}={v}" for k, v in zip(ITEMS, values)) + "."


def draw_pool(rng: random.Random, params: DealParams) -> tuple[Triple, tuple[Triple, Triple]]:
    """Counts and two different value vectors worth `total_value` each, as in Lewis et al.:
    every item type is valued by at least one side (so trades can help both) and some type by
    both (so the sides cannot both get everything they want)."""
    total = params.total_value
    for _ in range(200):
        n = rng.randint(*params.total_items)
        a, b = sorted(rng.sample(range(1, n), 2))
        counts = (a, b - a, n - b)
        vectors = [v for v in product(range(total + 1), repeat=3) if sum(c * x for c, x in zip(counts, v)) == total]
        pairs = [(u, v) for u in vectors for v in vectors
                 if all(x + y > 0 for x, y in zip(u, v)) and any(x * y > 0 for x, y in zip(u, v)) and u != v]
        if pairs:
            return counts, rng.choice(pairs)
    raise GameError(f"no valuations fit total_value={total} with total_items={params.total_items}")


@register
class DealOrNoDeal(Game[DealState, DealParams]):
    """Alternating proposals, negotiator_a first; accept the other side's last proposal or walk."""

    spec = GameSpec(
        id="deal_or_no_deal-v1",
        description="Two negotiators with private values divide books, hats and balls by alternating proposals.",
        roles=ROLES,
        min_players=2,
        max_players=2,
        action_format=text.ACTION_FORMAT,
        fallback="forfeit",
        win_threshold=0.5,  # a win gets more than half of the pool's worth to oneself
    )
    game_text = text.TEXT
    params_model = DealParams
    state_model = DealState

    def init(self, seed: int) -> tuple[DealState, list[Event]]:
        rng = random.Random(seed)
        counts, values = draw_pool(rng, self.params)
        state = DealState(counts=counts, values=values, rng_state=rng.getrandbits(63))
        events = [Event("start", f"A pool of {describe(named(counts))} is to be divided in at most "
                                 f"{self.params.max_turns} turns; the negotiator_a proposes first.")]
        for seat in (0, 1):
            events.append(Event("private", f"{values_phrase(values[seat])} The whole pool is worth "
                                           f"{self.params.total_value} to you.", private_to=(seat,),
                                data={"values": named(values[seat])}))
        return state, events

    def role(self, state: DealState, seat: int) -> str:
        return ROLES[seat]

    def _acting(self, state: DealState) -> frozenset[int]:
        return frozenset({len(state.moves) % 2})

    def parse(self, state: DealState, seat: int, action_text: str) -> Move:
        canonical = text.check(self.view(state, seat), action_text)
        kind, take = text.parse_action(canonical, state.counts)
        return Move(seat=seat, kind=kind, take=take)

    def transition(self, state: DealState, actions: Mapping[int, Any]) -> tuple[DealState, list[Event]]:
        (seat, move), = actions.items()
        standing = state.standing()
        state = state.model_copy(update={"moves": state.moves + (move,)})
        me, other = ROLES[seat], ROLES[1 - seat]
        if move.kind == "accept":
            taker = standing.seat
            rest = tuple(c - t for c, t in zip(state.counts, standing.take))
            deal = (standing.take, rest) if taker == 0 else (rest, standing.take)
            state = state.model_copy(update={"deal": deal})
            outcome = tuple(self.share(state, s, deal[s]) for s in (0, 1))
            state = self.finish(state, outcome, f"deal accepted by the {me}")
            gets = "; ".join(f"the {ROLES[s]} gets {describe(named(deal[s]))}" for s in (0, 1))
            says = f"The {me} accepts: {gets}."
            return state, [Event("accept", says, seat=seat, data={"deal": [named(d) for d in deal]})]
        if move.kind == "walk":
            state = self.finish(state, (self.params.no_deal_payoff,) * 2, f"the {me} walked away")
            return state, [Event("walk", f"The {me} walks away: no deal.", seat=seat)]
        rest = tuple(c - t for c, t in zip(state.counts, move.take))
        says = f"The {me} proposes to take {describe(named(move.take))}, leaving {describe(named(rest))} to the {other}."
        events = [Event("propose", says, seat=seat, data={"take": named(move.take)})]
        if len(state.moves) >= self.params.max_turns:
            state = self.finish(state, (self.params.no_deal_payoff,) * 2, "deadline passed without a deal")
            events.append(Event("deadline", "The deadline passed: no deal."))
        return state, events

    def share(self, state: DealState, seat: int, got: tuple[int, ...]) -> float:
        """The seat's outcome for a deal: its value of what it gets over the pool's whole value."""
        return sum(v * n for v, n in zip(state.values[seat], got)) / self.params.total_value

    def view(self, state: DealState, seat: int) -> dict[str, Any]:
        standing = state.standing()
        proposal = None
        if standing is not None:
            rest = tuple(c - t for c, t in zip(state.counts, standing.take))
            proposal = {"role": ROLES[standing.seat], "proposer_takes": named(standing.take), "other_gets": named(rest)}
        return {
            "game": self.spec.id,
            "role": ROLES[seat],
            "seat": seat,
            "players": 2,
            "items": named(state.counts),
            "your_values": named(state.values[seat]),
            "total_value": self.params.total_value,
            "history": [{"role": ROLES[m.seat], "kind": m.kind, "take": m.take and named(m.take)} for m in state.moves],
            "standing_proposal": proposal,
            "turn": len(state.moves),
            "turns_left": max(0, self.params.max_turns - len(state.moves)),
            "max_turns": self.params.max_turns,
            "no_deal_payoff": self.params.no_deal_payoff,
            "finished": state.finished,
            "end_reason": state.end_reason,
            "deal": None if state.deal is None else {ROLES[s]: named(state.deal[s]) for s in (0, 1)},
            "your_score": None if state.outcome is None else state.outcome[seat],
        }

    def legal_actions(self, state: DealState, seat: int) -> tuple[str, ...]:
        # A concrete, valid proposal (half of each item, rounded down) rather than a template:
        # small models copy the format's `N` literally.
        half = text.format_action("propose", tuple(c // 2 for c in state.counts))
        hints = [f"{half} (for example: name what you take, any counts out of {describe(named(state.counts))})"]
        standing = state.standing()
        if standing is not None and standing.seat != seat:
            rest = tuple(c - t for c, t in zip(state.counts, standing.take))
            hints.append(f"[Accept] (you get {describe(named(rest))})")
        hints.append("[Walk] (end without a deal)")
        return tuple(hints)

    def random_action(self, state: DealState, seat: int, rng: random.Random) -> str:
        standing = state.standing()
        options = ["propose"] * 6 + ["walk"] + (["accept"] * 2 if standing and standing.seat != seat else [])
        kind = rng.choice(options)
        take = tuple(rng.randint(0, c) for c in state.counts) if kind == "propose" else None
        return text.format_action(kind, take)

    def hidden_from(self, state: DealState, observer: int) -> list[str]:
        # The other side's values as its view and its private event write them; never revealed.
        other = named(state.values[1 - observer])
        return [view_entry("your_values", other), values_phrase(state.values[1 - observer])]
