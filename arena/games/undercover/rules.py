"""undercover-v1: "Who is the undercover": describe a secret word, find the seats whose word differs, vote them out."""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

import maro.arena.games.undercover.text as text
from maro.arena.engine import Event, Game, GameSpec, Params, State, register, view_entry

CIVILIAN, UNDERCOVER = "civilian", "undercover"
TEAMS = {CIVILIAN: "civilians", UNDERCOVER: "undercovers"}


Word = Annotated[str, Field(min_length=1, max_length=31)]


class UndercoverParams(Params):
    """Parameters of undercover-v1."""

    players: int = Field(5, ge=4, le=8)
    undercovers: int | None = Field(None, ge=1, le=3)
    """Undercover seats; None means 1 for up to 6 players, 2 for 7-8. Must stay below the civilians."""
    max_rounds: int = Field(6, ge=1, le=20)
    """Undercovers who survive this many rounds win."""
    word_pairs: tuple[tuple[Word, Word], ...] = Field(text.DEFAULT_PAIRS, min_length=1, max_length=500)
    """Related word pairs; each match deals one, and which side goes to the civilians, from the seed."""

    @model_validator(mode="after")
    def _check(self) -> UndercoverParams:
        if not 1 <= self.num_undercovers < self.players - self.num_undercovers:
            raise ValueError("need at least 1 undercover and fewer undercovers than civilians")
        if not self.word_pairs:
            raise ValueError("word_pairs must hold at least one pair")
        for a, b in self.word_pairs:
            if not all(re.fullmatch(r"[a-z][a-z -]{0,30}", w) for w in (a, b)) or a == b:
                raise ValueError(f"bad word pair {(a, b)!r}: two different lowercase words")
        return self

    @property
    def num_undercovers(self) -> int:
        return self.undercovers if self.undercovers is not None else (1 if self.players <= 6 else 2)


class Description(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    round: int
    seat: int
    text: str


class Ballot(BaseModel):
    """One round's vote: (voter, target) pairs and who went out (None on a tie)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    round: int
    votes: tuple[tuple[int, int], ...]
    eliminated: int | None = None


class UndercoverState(State):
    """Full state, words and roles included; leaves the engine only through `view`."""

    civilian_word: str
    undercover_word: str
    undercover_seats: tuple[int, ...]
    alive: tuple[int, ...]
    round: int = 0
    speaker_pos: int = 0
    """Index into `alive` of the next describer; equal to len(alive) in the vote phase."""
    descriptions: tuple[Description, ...] = ()
    ballots: tuple[Ballot, ...] = ()
    winner: str = ""


@register
class Undercover(Game[UndercoverState, UndercoverParams]):
    """Round-robin descriptions, then a simultaneous vote; the most-voted seat is out, its role revealed."""

    spec = GameSpec(
        id="undercover-v1",
        description="Who is the undercover: civilians share a word, undercovers hold a related one; describe and vote.",
        roles=(CIVILIAN, UNDERCOVER),
        min_players=4,
        max_players=8,
        action_format=text.ACTION_FORMAT,
        fallback="default",
        teams=("civilians", "undercovers"),
        win_threshold=0.0,
    )
    game_text = text.TEXT
    params_model = UndercoverParams
    state_model = UndercoverState
    players_param = "players"

    def init(self, seed: int) -> tuple[UndercoverState, list[Event]]:
        rng = random.Random(seed)
        pair = list(rng.choice(self.params.word_pairs))
        rng.shuffle(pair)  # either word of a pair may be the civilians'
        n, u = self.params.players, self.params.num_undercovers
        state = UndercoverState(civilian_word=pair[0], undercover_word=pair[1],
                                undercover_seats=tuple(sorted(rng.sample(range(n), u))), alive=tuple(range(n)),
                                rng_state=rng.getrandbits(63))
        events = [Event("start", f"Who is the undercover: {n} players, {u} undercover(s) hold a word different from "
                                 "the civilians'. Nobody knows their own role. Seat 0 describes first.")]
        events += [Event("word", text.word_line(self.word(state, s)), private_to=(s,)) for s in range(n)]
        return state, events

    def word(self, state: UndercoverState, seat: int) -> str:
        return state.undercover_word if seat in state.undercover_seats else state.civilian_word

    def role(self, state: UndercoverState, seat: int) -> str:
        return UNDERCOVER if seat in state.undercover_seats else CIVILIAN

    def team(self, state: UndercoverState, seat: int) -> str:
        return TEAMS[self.role(state, seat)]

    def phase(self, state: UndercoverState) -> str:
        return "describe" if state.speaker_pos < len(state.alive) else "vote"

    def _acting(self, state: UndercoverState) -> frozenset[int]:
        if self.phase(state) == "describe":
            return frozenset({state.alive[state.speaker_pos]})
        return frozenset(state.alive)

    def parse(self, state: UndercoverState, seat: int, action_text: str) -> tuple[str, str | int]:
        return text.parse_action(text.check(self.view(state, seat), action_text), self.phase(state))

    def transition(self, state: UndercoverState, actions: Mapping[int, Any]) -> tuple[UndercoverState, list[Event]]:
        if self.phase(state) == "describe":
            (seat, (_, said)), = actions.items()
            line = Description(round=state.round, seat=seat, text=said)
            state = state.model_copy(update={"descriptions": state.descriptions + (line,),
                                             "speaker_pos": state.speaker_pos + 1})
            return state, [Event("describe", f"Seat {seat} describes: {said}", seat=seat)]
        return self._count_votes(state, {s: target for s, (_, target) in actions.items()})

    def _count_votes(self, state: UndercoverState, votes: dict[int, int]) -> tuple[UndercoverState, list[Event]]:
        tally = Counter(votes.values())
        top = max(tally.values())
        leaders = sorted(s for s, k in tally.items() if k == top)
        out = leaders[0] if len(leaders) == 1 else None
        shown = ", ".join(f"seat {v} votes seat {t}" for v, t in sorted(votes.items()))
        if out is None:
            result = f"tie between seats {', '.join(map(str, leaders))} with {top} votes each: nobody is out"
        else:
            result = f"seat {out} is out with {top} votes. {text.reveal_phrase(out, self.role(state, out))}"
        ballot = Ballot(round=state.round, votes=tuple(sorted(votes.items())), eliminated=out)
        alive = tuple(s for s in state.alive if s != out)
        state = state.model_copy(update={"ballots": state.ballots + (ballot,), "alive": alive})
        events = [Event("vote", f"Round {state.round + 1} vote: {shown}; {result}.", data={"eliminated": out})]
        under = sum(s in state.undercover_seats for s in alive)
        if under == 0:
            winner, why = "civilians", "every undercover is out"
        elif under >= len(alive) - under:
            winner, why = "undercovers", "the undercovers are as many as the civilians left"
        elif state.round + 1 >= self.params.max_rounds:
            winner, why = "undercovers", f"the undercovers survived {self.params.max_rounds} rounds"
        else:
            return state.model_copy(update={"round": state.round + 1, "speaker_pos": 0}), events
        outcome = [1.0 if self.team(state, s) == winner else -1.0 for s in range(self.params.players)]
        state = self.finish(state.model_copy(update={"winner": winner}), outcome, f"the {winner} win: {why}")
        seats = ", ".join(f"seat {s}" for s in state.undercover_seats)
        events.append(Event("end", f"The {winner} win: {why}. The civilian word was \"{state.civilian_word}\", the "
                                   f"undercover word \"{state.undercover_word}\"; undercover: {seats}."))
        return state, events

    def revealed(self, state: UndercoverState) -> dict[str, str]:
        """Roles the rules have made public: eliminated seats, and every seat once the match ends."""
        seats = range(self.params.players) if state.finished else [b.eliminated for b in state.ballots]
        return {str(s): self.role(state, s) for s in seats if s is not None}

    def known_role(self, state: UndercoverState, seat: int) -> str:
        """Nobody is told whether they hold the odd word: a seat learns its role when it is voted
        out or the match ends."""
        return self.revealed(state).get(str(seat), "unknown")

    def view(self, state: UndercoverState, seat: int) -> dict[str, Any]:
        revealed = self.revealed(state)
        phase = self.phase(state)
        view = {
            "game": self.spec.id,
            "role": self.known_role(state, seat),
            "seat": seat,
            "players": self.params.players,
            "undercovers": self.params.num_undercovers,
            "word": self.word(state, seat),
            "round": state.round + 1,
            "max_rounds": self.params.max_rounds,
            "phase": phase,
            "speaker": state.alive[state.speaker_pos] if phase == "describe" and not state.finished else None,
            "alive": list(state.alive),
            "descriptions": [{"round": d.round + 1, "seat": d.seat, "text": d.text} for d in state.descriptions],
            "votes": [{"round": b.round + 1, "votes": [list(v) for v in b.votes], "eliminated": b.eliminated,
                       "result": "nobody is out (tie)" if b.eliminated is None
                       else f"seat {b.eliminated} is out. {text.reveal_phrase(b.eliminated, revealed[str(b.eliminated)])}"}
                      for b in state.ballots],
            "revealed": revealed,
            "finished": state.finished,
            "end_reason": state.end_reason,
        }
        if state.finished:
            view["words"] = {"civilians": state.civilian_word, "undercovers": state.undercover_word}
            view["winner"] = state.winner
        return view

    def legal_actions(self, state: UndercoverState, seat: int) -> tuple[str, ...]:
        if self.phase(state) == "describe":
            return (f"[Describe: text] (one line, {text.DESCRIBE_MIN}-{text.DESCRIBE_MAX} characters, "
                    "without your word itself)",)
        return tuple(f"[Vote: {s}]" for s in state.alive if s != seat)

    def random_action(self, state: UndercoverState, seat: int, rng: random.Random) -> str:
        if self.phase(state) == "describe":
            word = self.word(state, seat)
            return text.format_action("describe", rng.choice([t for t in text.NEUTRAL if not text.names_word(t, word)]))
        return rng.choice(self.legal_actions(state, seat))

    def default_action(self, state: UndercoverState, seat: int) -> str:
        # Neutral words and the lowest other seat: a missed turn gives nobody information or a steer.
        if self.phase(state) == "describe":
            word = self.word(state, seat)
            return text.format_action("describe", next(t for t in text.NEUTRAL if not text.names_word(t, word)))
        return text.format_action("vote", min(s for s in state.alive if s != seat))

    def hidden_from(self, state: UndercoverState, observer: int) -> list[str]:
        if state.finished:
            return []
        other = state.civilian_word if observer in state.undercover_seats else state.undercover_word
        hidden = [view_entry("word", other), text.word_line(other)]
        revealed = self.revealed(state)
        for seat in range(self.params.players):
            if str(seat) not in revealed:
                role = self.role(state, seat)
                hidden += [view_entry(str(seat), role), text.reveal_phrase(seat, role)]
        if str(observer) not in revealed:
            hidden.append(view_entry("role", self.role(state, observer)))
        return hidden
