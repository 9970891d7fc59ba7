"""kuhn_poker-v1: three-card poker with one betting round per hand (as in OpenSpiel and SPIRAL)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

import maro.arena.games.kuhn_poker.text as text
from maro.arena.engine import Event, Game, GameSpec, Params, State, register, view_entry
from maro.arena.games.kuhn_poker.text import CARDS, card_phrase

ROLES = ("first", "second")


class KuhnParams(Params):
    """Parameters of kuhn_poker-v1."""

    rounds: int = Field(1, ge=1, le=50)
    """Hands per match; who acts first alternates, seat 0 ("first") opens hand 1."""


class Hand(BaseModel):
    """One hand: cards by seat (0 Jack, 1 Queen, 2 King), who opened, the moves, the result."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cards: tuple[int, int]
    opener: int
    moves: tuple[str, ...] = ()
    winner: int | None = None
    chips: int = 0
    showdown: bool = False

    def actor(self) -> int:
        return (self.opener + len(self.moves)) % 2

    def put_in(self, seat: int) -> int:
        """Chips the seat has in the pot: the ante plus a bet or a call."""
        own = self.moves[(seat - self.opener) % 2::2]
        return 1 + sum(m in ("bet", "call") for m in own)

    def to_call(self) -> int:
        return int(bool(self.moves) and self.moves[-1] == "bet")

    def over(self) -> bool:
        return self.moves[-2:] == ("check", "check") or (bool(self.moves) and self.moves[-1] in ("call", "fold"))


class KuhnState(State):
    """Full state, every card included; leaves the engine only through `view`."""

    hands: tuple[Hand, ...]
    net: int = 0
    """Chips seat 0 has won over finished hands (seat 1 has the negative)."""

    @property
    def hand(self) -> Hand:
        return self.hands[-1]


@register
class KuhnPoker(Game[KuhnState, KuhnParams]):
    """Antes of 1, one bet of 1 allowed per hand; the outcome is chips won / (2 x rounds)."""

    spec = GameSpec(
        id="kuhn_poker-v1",
        description="Kuhn poker: Jack, Queen, King, one private card each, check/bet/call/fold.",
        roles=ROLES,
        min_players=2,
        max_players=2,
        action_format=text.ACTION_FORMAT,
        fallback="forfeit",
        win_threshold=0.0,
    )
    game_text = text.TEXT
    params_model = KuhnParams
    state_model = KuhnState

    def init(self, seed: int) -> tuple[KuhnState, list[Event]]:
        rng = random.Random(seed)
        hand = Hand(cards=tuple(rng.sample(range(3), 2)), opener=0)
        state = KuhnState(hands=(hand,), rng_state=rng.getrandbits(63))
        start = Event("start", f"Kuhn poker, {self.params.rounds} hand(s); each player antes 1 chip per hand.")
        return state, [start, *self._deal_events(state)]

    def _deal_events(self, state: KuhnState) -> list[Event]:
        n, hand = len(state.hands), state.hand
        events = [Event("hand", f"Hand {n} begins; the {ROLES[hand.opener]} player acts first.")]
        for seat in (0, 1):
            card = CARDS[hand.cards[seat]]
            phrase = card_phrase(n, ROLES[seat], card)
            events.append(Event("deal", f"{phrase} (your card).", private_to=(seat,), data={"card": card}))
        return events

    def role(self, state: KuhnState, seat: int) -> str:
        return ROLES[seat]

    def _acting(self, state: KuhnState) -> frozenset[int]:
        return frozenset({state.hand.actor()})

    def parse(self, state: KuhnState, seat: int, action_text: str) -> str:
        return text.parse_action(text.check(self.view(state, seat), action_text))

    def transition(self, state: KuhnState, actions: Mapping[int, Any]) -> tuple[KuhnState, list[Event]]:
        (seat, kind), = actions.items()
        hand = state.hand.model_copy(update={"moves": state.hand.moves + (kind,)})
        events = [Event(kind, f"The {ROLES[seat]} player {kind}s.", seat=seat)]
        if hand.over():
            hand, more = self._settle(hand, len(state.hands))
            events += more
            net = state.net + (hand.chips if hand.winner == 0 else -hand.chips)
            state = state.model_copy(update={"hands": state.hands[:-1] + (hand,), "net": net})
            if len(state.hands) == self.params.rounds:
                z = net / (2 * self.params.rounds)
                return self.finish(state, (z, 0.0 - z), f"{self.params.rounds} hand(s) played"), events
            cards, rng_state = self.chance(state, lambda r: tuple(r.sample(range(3), 2)))
            nxt = Hand(cards=cards, opener=len(state.hands) % 2)
            state = state.model_copy(update={"hands": state.hands + (nxt,), "rng_state": rng_state})
            return state, events + self._deal_events(state)
        return state.model_copy(update={"hands": state.hands[:-1] + (hand,)}), events

    @staticmethod
    def _settle(hand: Hand, n: int) -> tuple[Hand, list[Event]]:
        """Who wins the hand and how many chips: the folder's stake, or the loser's at showdown."""
        if hand.moves[-1] == "fold":
            folder = (hand.opener + len(hand.moves) - 1) % 2
            winner, showdown = 1 - folder, False
            chips = hand.put_in(folder)
            what = f"The {ROLES[winner]} player wins {chips} chip(s); the cards stay hidden."
        else:
            winner, showdown = (0 if hand.cards[0] > hand.cards[1] else 1), True
            chips = hand.put_in(1 - winner)
            shown = "; ".join(card_phrase(n, ROLES[s], CARDS[hand.cards[s]]) for s in (0, 1))
            what = f"Showdown. {shown}. The {ROLES[winner]} player wins {chips} chip(s)."
        hand = hand.model_copy(update={"winner": winner, "chips": chips, "showdown": showdown})
        return hand, [Event("showdown" if showdown else "win", what, data={"winner": winner, "chips": chips})]

    def view(self, state: KuhnState, seat: int) -> dict[str, Any]:
        hand, n = state.hand, len(state.hands)
        known = []
        for i, h in enumerate(state.hands, 1):
            for s in (0, 1):
                if s == seat or h.showdown:
                    known.append(card_phrase(i, ROLES[s], CARDS[h.cards[s]]))
        past = [
            {"hand": i, "actions": [f"{ROLES[(h.opener + k) % 2]} {m}s" for k, m in enumerate(h.moves)],
             "result": f"{ROLES[h.winner]} won {h.chips} chip(s)" + (" at showdown" if h.showdown else " by a fold")}
            for i, h in enumerate(state.hands, 1) if h.winner is not None and (i < n or state.finished)
        ]
        return {
            "game": self.spec.id,
            "role": ROLES[seat],
            "seat": seat,
            "players": 2,
            "hand": n,
            "rounds": self.params.rounds,
            "your_card": CARDS[hand.cards[seat]],
            "known_cards": known,
            "you_act_first": hand.opener == seat,
            "history": [{"role": ROLES[(hand.opener + k) % 2], "action": m} for k, m in enumerate(hand.moves)],
            "to_call": hand.to_call() if hand.actor() == seat else 0,
            "pot": hand.put_in(0) + hand.put_in(1),
            "your_chips": state.net if seat == 0 else -state.net,
            "past_hands": past,
            "finished": state.finished,
            "end_reason": state.end_reason,
        }

    def legal_actions(self, state: KuhnState, seat: int) -> tuple[str, ...]:
        if state.hand.to_call():
            return ("[Call] (add 1 chip and show down)", "[Fold] (give up the pot)")
        return ("[Check] (bet nothing)", "[Bet] (add 1 chip)")

    def random_action(self, state: KuhnState, seat: int, rng: random.Random) -> str:
        return rng.choice(("[Call]", "[Fold]") if state.hand.to_call() else ("[Check]", "[Bet]"))

    def hidden_from(self, state: KuhnState, observer: int) -> list[str]:
        # The opponent's cards as views and events write them, for every hand not shown down.
        other = 1 - observer
        hidden = [card_phrase(i, ROLES[other], CARDS[h.cards[other]])
                  for i, h in enumerate(state.hands, 1) if not h.showdown]
        if not state.hand.showdown:
            hidden.append(view_entry("your_card", CARDS[state.hand.cards[other]]))
        return hidden
