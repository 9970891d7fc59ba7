"""bargaining-v1: a seller and a buyer with private valuations trade alternating offers."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

import maro.arena.games.bargaining.text as text
from maro.arena.engine import Event, Game, GameSpec, Params, State, register, view_entry

SELLER, BUYER = 0, 1
ROLES = ("seller", "buyer")


Price = Annotated[int, Field(ge=0, le=10_000)]


class BargainingParams(Params):
    """Parameters of bargaining-v1."""

    max_rounds: int = Field(4, ge=1, le=20)
    """Deadline: each round is one turn per seat; no deal when it passes."""
    cost_range: tuple[Price, Price] = (20, 60)
    """The seller's private cost is drawn uniformly from this range."""
    value_range: tuple[Price, Price] = (50, 110)
    """The buyer's private value is drawn from this range, always above the cost."""
    price_max: int = Field(200, ge=1, le=10_000)
    """Offers are integers from 0 to this."""

    @model_validator(mode="after")
    def _check(self) -> BargainingParams:
        (c_lo, c_hi), (v_lo, v_hi) = self.cost_range, self.value_range
        if not (0 <= c_lo <= c_hi and v_lo <= v_hi <= self.price_max and self.max_rounds >= 1):
            raise ValueError("need 0 <= cost_lo <= cost_hi, value_lo <= value_hi <= price_max, max_rounds >= 1")
        if v_hi <= c_lo:
            raise ValueError("value_range must reach above cost_range so a deal can pay both sides")
        return self


class Move(BaseModel):
    """One public move: an offer at a price, an acceptance or a walk-away."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seat: int
    kind: str  # "offer" | "accept" | "walk"
    price: int | None = None


class BargainingState(State):
    """Full state, hidden valuations included; leaves the engine only through `view`."""

    cost: int
    value: int
    moves: tuple[Move, ...] = ()
    deal_price: int | None = None

    @property
    def turns(self) -> int:
        return len(self.moves)

    def standing_offer(self) -> Move | None:
        offers = [m for m in self.moves if m.kind == "offer"]
        return offers[-1] if offers else None


@register
class Bargaining(Game[BargainingState, BargainingParams]):
    """Alternating offers, seller first; accept the other side's standing offer or walk away."""

    spec = GameSpec(
        id="bargaining-v1",
        description="A seller and a buyer with private valuations haggle over one item in alternating offers.",
        roles=ROLES,
        min_players=2,
        max_players=2,
        action_format=text.ACTION_FORMAT,
        fallback="forfeit",
        win_threshold=0.5,  # a win captures more than half of the surplus
    )
    game_text = text.TEXT
    params_model = BargainingParams
    state_model = BargainingState

    def init(self, seed: int) -> tuple[BargainingState, list[Event]]:
        rng = random.Random(seed)
        cost = rng.randint(*self.params.cost_range)
        value = rng.randint(max(self.params.value_range[0], cost + 1), max(self.params.value_range[1], cost + 1))
        state = BargainingState(cost=cost, value=value, rng_state=rng.getrandbits(63))
        events = [
            Event("start", f"Bargaining over one item, at most {self.params.max_rounds} rounds; the seller opens."),
            Event("private", f"Your cost is {cost}.", private_to=(SELLER,), data={"cost": cost}),
            Event("private", f"Your value is {value}.", private_to=(BUYER,), data={"value": value}),
        ]
        return state, events

    def random_action(self, state: BargainingState, seat: int, rng: random.Random) -> str:
        last = state.moves[-1] if state.moves else None
        options = ["offer"] * 6 + ["walk"] + (["accept"] * 2 if last and last.kind == "offer" else [])
        kind = rng.choice(options)
        return text.format_action(kind, rng.randint(0, self.params.price_max) if kind == "offer" else None)

    def hidden_from(self, state: BargainingState, observer: int) -> list[str]:
        # Views carry the own valuation under its key; the other side's key must never appear.
        return [view_entry("value")] if observer == SELLER else [view_entry("cost")]

    def role(self, state: BargainingState, seat: int) -> str:
        return ROLES[seat]

    def _acting(self, state: BargainingState) -> frozenset[int]:
        return frozenset({state.turns % 2})

    def parse(self, state: BargainingState, seat: int, action_text: str) -> Move:
        canonical = text.check(self.view(state, seat), action_text)
        kind, price = text.parse_action(canonical, self.params.price_max)
        return Move(seat=seat, kind=kind, price=price)

    def transition(self, state: BargainingState, actions: Mapping[int, Any]) -> tuple[BargainingState, list[Event]]:
        (seat, move), = actions.items()
        state = state.model_copy(update={"moves": state.moves + (move,)})
        who = ROLES[seat]
        if move.kind == "offer":
            events = [Event("offer", f"The {who} offers {move.price}.", seat=seat, data={"price": move.price})]
        elif move.kind == "accept":
            price = state.moves[-2].price
            state = state.model_copy(update={"deal_price": price})
            state = self.finish(state, self.payoffs(state, price), f"deal at {price}")
            return state, [Event("accept", f"The {who} accepts: deal at {price}.", seat=seat, data={"price": price})]
        else:
            state = self.finish(state, (0.0, 0.0), f"the {who} walked away")
            return state, [Event("walk", f"The {who} walks away: no deal.", seat=seat)]
        if state.turns >= 2 * self.params.max_rounds:
            state = self.finish(state, (0.0, 0.0), "deadline passed without a deal")
            events.append(Event("deadline", "The deadline passed: no deal."))
        return state, events

    @staticmethod
    def payoffs(state: BargainingState, price: float) -> tuple[float, float]:
        """Each side's captured surplus as a share of the whole surplus (value - cost)."""
        surplus = state.value - state.cost
        return (price - state.cost) / surplus, (state.value - price) / surplus

    def view(self, state: BargainingState, seat: int) -> dict[str, Any]:
        standing = state.standing_offer()
        total = 2 * self.params.max_rounds
        return {
            "game": self.spec.id,
            "role": ROLES[seat],
            "private": {"cost": state.cost} if seat == SELLER else {"value": state.value},
            "history": [{"role": ROLES[m.seat], "kind": m.kind, "price": m.price} for m in state.moves],
            "standing_offer": None if standing is None else {"role": ROLES[standing.seat], "price": standing.price},
            "turn": state.turns,
            "turns_left": max(0, total - state.turns),
            "max_rounds": self.params.max_rounds,
            "price_max": self.params.price_max,
            "finished": state.finished,
            "end_reason": state.end_reason,
            "deal_price": state.deal_price,
        }

    def legal_actions(self, state: BargainingState, seat: int) -> tuple[str, ...]:
        hints = [f"[Offer: N] with N an integer from 0 to {self.params.price_max}"]
        last = state.moves[-1] if state.moves else None
        if last is not None and last.kind == "offer" and last.seat != seat:
            hints.append(f"[Accept] (accept the {ROLES[last.seat]}'s offer of {last.price})")
        hints.append("[Walk] (end without a deal)")
        return tuple(hints)
