"""prisoners_dilemma-v1: a repeated N-player prisoner's dilemma with free chat and sealed, simultaneous moves."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

import maro.arena.games.prisoners_dilemma.text as text
from maro.arena.engine import Event, Game, GameSpec, Params, State, register

MAX_PAYOFF = 5.0  # the temptation payoff T: the best a round can pay
RANDOM_ROUND = sum(text.PAYOFF.values()) / 4  # expected payoff of a round of uniformly random moves
_CHATTER = ("I will cooperate if you do.", "Let us all cooperate.", "Trust has to be earned.",
            "Defectors will be punished.", "Same as last round.")


class PrisonersDilemmaParams(Params):
    """Parameters of prisoners_dilemma-v1."""

    players: int = Field(2, ge=2, le=6)
    rounds: int = Field(3, ge=1, le=50)
    """Rounds of chat then sealed moves; every seat knows the number in advance."""
    chat_turns: int = Field(1, ge=0, le=5)
    """Passes around the table before each move phase: each seat speaks this many times, in seat order."""


class ChatLine(BaseModel):
    """One chat turn; `text` None is a pass."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    round: int
    seat: int
    text: str | None = None


class PrisonersDilemmaState(State):
    """Full state; moves enter it only at the reveal, so nothing sealed is ever stored."""

    round: int = 0
    chat_pos: int = 0
    chat: tuple[ChatLine, ...] = ()
    moves: tuple[tuple[str, ...], ...] = ()
    """Per finished round, each seat's move ("cooperate" | "defect")."""


def round_payoffs(moves: tuple[str, ...]) -> tuple[float, ...]:
    """Each seat's pairwise PD payoff, averaged over its opponents."""
    n = len(moves)
    return tuple(sum(text.PAYOFF[(moves[i], moves[j])] for j in range(n) if j != i) / (n - 1) for i in range(n))


def to_outcome(mean_payoff: float) -> float:
    """Mean payoff per round, [0, 5], mapped linearly onto [-1, 1]."""
    return mean_payoff / (MAX_PAYOFF / 2) - 1.0


@register
class PrisonersDilemma(Game[PrisonersDilemmaState, PrisonersDilemmaParams]):
    """Chat in seat order, then everyone seals Cooperate or Defect; moves are revealed together."""

    spec = GameSpec(
        id="prisoners_dilemma-v1",
        description="A repeated prisoner's dilemma for 2 to 6 players: free chat, then sealed simultaneous moves.",
        roles=("player",),
        min_players=2,
        max_players=6,
        action_format=text.ACTION_FORMAT,
        fallback="default",
        # Mean payoff above 2.5 per round: mutual cooperation (3 -> +0.2) wins, mutual defection
        # (1 -> -0.6) and being exploited lose.
        win_threshold=0.0,
    )
    game_text = text.TEXT
    params_model = PrisonersDilemmaParams
    state_model = PrisonersDilemmaState
    players_param = "players"

    def init(self, seed: int) -> tuple[PrisonersDilemmaState, list[Event]]:
        # No chance in the rules; the seed only seeds the stored generator for uniformity.
        state = PrisonersDilemmaState(rng_state=random.Random(seed).getrandbits(63))
        p = self.params
        return state, [Event("start", f"Prisoner's dilemma: {p.players} players, {p.rounds} rounds; each round "
                                      f"{p.chat_turns} chat turn(s) per seat in seat order, then sealed moves.")]

    def phase(self, state: PrisonersDilemmaState) -> str:
        return "chat" if state.chat_pos < self.params.chat_turns * self.params.players else "move"

    def role(self, state: PrisonersDilemmaState, seat: int) -> str:
        return "player"

    def _acting(self, state: PrisonersDilemmaState) -> frozenset[int]:
        if self.phase(state) == "chat":
            return frozenset({state.chat_pos % self.params.players})
        return frozenset(range(self.params.players))

    def parse(self, state: PrisonersDilemmaState, seat: int, action_text: str) -> tuple[str, str | None]:
        canonical = text.check(self.view(state, seat), action_text)
        return text.parse_action(canonical, self.phase(state))

    def transition(self, state: PrisonersDilemmaState, actions: Mapping[int, Any]) -> tuple[PrisonersDilemmaState, list[Event]]:
        if self.phase(state) == "chat":
            (seat, (kind, speech)), = actions.items()
            line = ChatLine(round=state.round, seat=seat, text=speech)
            said = f"Seat {seat} says: {speech}" if kind == "say" else f"Seat {seat} passes."
            state = state.model_copy(update={"chat": state.chat + (line,), "chat_pos": state.chat_pos + 1})
            return state, [Event("say" if kind == "say" else "pass", said, seat=seat)]
        moves = tuple(actions[s][0] for s in range(self.params.players))
        pay = round_payoffs(moves)
        shown = ", ".join(f"seat {s} {m}s ({p:g} points)" for s, (m, p) in enumerate(zip(moves, pay)))
        state = state.model_copy(update={"moves": state.moves + (moves,), "round": state.round + 1, "chat_pos": 0})
        events = [Event("reveal", f"Round {state.round} moves revealed: {shown}.",
                        data={"moves": list(moves), "payoffs": list(pay)})]
        if state.round >= self.params.rounds:
            totals = self.totals(state)
            outcome = [to_outcome(t / self.params.rounds) for t in totals]
            state = self.finish(state, outcome, f"all {self.params.rounds} rounds played")
            scores = ", ".join(f"seat {s} {t:g}" for s, t in enumerate(totals))
            events.append(Event("end", f"The game is over. Total payoffs: {scores}."))
        return state, events

    def totals(self, state: PrisonersDilemmaState) -> list[float]:
        totals = [0.0] * self.params.players
        for moves in state.moves:
            totals = [t + p for t, p in zip(totals, round_payoffs(moves))]
        return totals

    def view(self, state: PrisonersDilemmaState, seat: int) -> dict[str, Any]:
        phase = self.phase(state)
        return {
            "game": self.spec.id,
            "role": "player",
            "seat": seat,
            "players": self.params.players,
            "round": min(state.round + 1, self.params.rounds),
            "rounds": self.params.rounds,
            "chat_turns": self.params.chat_turns,
            "phase": phase,
            "speaker": state.chat_pos % self.params.players if phase == "chat" and not state.finished else None,
            "chat": [{"round": c.round + 1, "seat": c.seat, "text": c.text} for c in state.chat],
            "history": [{"round": r + 1, "moves": list(m), "payoffs": list(round_payoffs(m))}
                        for r, m in enumerate(state.moves)],
            "scores": self.totals(state),
            "finished": state.finished,
            "end_reason": state.end_reason,
        }

    def legal_actions(self, state: PrisonersDilemmaState, seat: int) -> tuple[str, ...]:
        if self.phase(state) == "chat":
            return (f"[Say: text] (one line, at most {text.SAY_MAX} characters)", "[Pass]")
        return ("[Cooperate]", "[Defect]")

    def random_action(self, state: PrisonersDilemmaState, seat: int, rng: random.Random) -> str:
        if self.phase(state) == "chat":
            return text.format_action("pass") if rng.random() < 0.5 else text.format_action("say", rng.choice(_CHATTER))
        return text.format_action(rng.choice(("cooperate", "defect")))

    def default_action(self, state: PrisonersDilemmaState, seat: int) -> str:
        # A missed move cooperates: a seat that fails to answer must never earn the temptation
        # payoff, so broken output cannot pay better than a considered cooperation.
        return "[Pass]" if self.phase(state) == "chat" else "[Cooperate]"

    def hidden_from(self, state: PrisonersDilemmaState, observer: int) -> list[str]:
        # Nothing private exists: the engine collects a simultaneous phase's moves and applies
        # them in one transition, so a sealed move is never part of any state a view is built from.
        return []
