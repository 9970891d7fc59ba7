"""The rules' base: typed immutable states, events, observations and the step flow every game shares."""

from __future__ import annotations

import json
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from maro.arena.engine.spec import GameSpec
from maro.arena.engine.text import GameText
from maro.arena.errors import MatchOver, NotYourTurn


class Params(BaseModel):
    """Base of each game's validated parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class State(BaseModel):
    """Base of each game's immutable state; `json` round-trips exactly."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rng_state: int = 0
    finished: bool = False
    outcome: tuple[float, ...] | None = None
    end_reason: str = ""


@dataclass(frozen=True)
class Event:
    """What the game records; `seat` None with `private_to` empty means everyone sees it."""

    kind: str
    text: str
    seat: int | None = None
    private_to: tuple[int, ...] = ()
    data: Mapping[str, Any] = field(default_factory=dict)

    def visible_to(self, seat: int) -> bool:
        return not self.private_to or seat in self.private_to


@dataclass(frozen=True)
class Observation:
    """Everything one seat may know now: the only way hidden facts leave the engine."""

    seat: int
    role: str
    view: Mapping[str, Any]
    legal_actions: tuple[str, ...]
    acting: bool


_KEY_ONLY = object()


def view_entry(key: str, value: Any = _KEY_ONLY) -> str:
    """A view entry as `hidden_from` lists it: `key` with `value` (or the key alone, when its mere
    presence gives a fact away), spelled as the serialised view spells it. The one place that
    knows the spelling, so games name facts, not JSON."""
    return json.dumps(key) if value is _KEY_ONLY else json.dumps({key: value})[1:-1]


S = TypeVar("S", bound=State)
P = TypeVar("P", bound=Params)
T = TypeVar("T")


Heuristic = Callable[["Game", Any, int], float]
"""(game, state, seat) -> the seat's estimated outcome in [-1, 1]."""


def heuristic_of(cls: type[Game]) -> Callable[[Heuristic], Heuristic]:
    """Decorator of a game's `heuristic` module: attach the function as `cls.heuristic`."""
    def attach(function: Heuristic) -> Heuristic:
        if cls.__dict__.get("heuristic") is not None:
            raise ValueError(f"{cls.spec.id} has a value heuristic already")
        cls.heuristic = function
        return function
    return attach


class Game(ABC, Generic[S, P]):
    """A game's rules as a state machine; the step flow shared by all games lives here."""

    spec: ClassVar[GameSpec]
    params_model: ClassVar[type[Params]]
    state_model: ClassVar[type[State]]
    game_text: ClassVar[GameText]
    """The game's text side (the `TEXT` of its `text` module): checks and prompts from a view."""
    heuristic: ClassVar[Heuristic | None] = None
    """A cheap estimate of a seat's expected outcome in [-1, 1] in an unfinished state, for MARO's
    `game` estimator: the function the game's `heuristic` module attaches with `@heuristic_of`.
    Optional: without one, MARO estimates with rollouts or a judge."""
    players_param: ClassVar[str | None] = None
    """The parameter that sets the seat count, for games whose spec allows several (`players`)."""

    def __init__(self, params: P | Mapping[str, Any] | None = None):
        if isinstance(params, Params):
            self.params: P = params  # type: ignore[assignment]
        else:
            self.params = self.params_model.model_validate(dict(params or {}))  # type: ignore[assignment]

    # --- what each game writes -------------------------------------------------------------
    @abstractmethod
    def init(self, seed: int) -> tuple[S, list[Event]]:
        """Initial state (chance resolved from `seed`) and the opening events."""

    @abstractmethod
    def role(self, state: S, seat: int) -> str: ...

    @abstractmethod
    def _acting(self, state: S) -> frozenset[int]:
        """Seats that act now in an unfinished state; more than one means a simultaneous phase."""

    @abstractmethod
    def parse(self, state: S, seat: int, text: str) -> Any:
        """Turn action text into a typed action or raise InvalidAction with the reason."""

    @abstractmethod
    def transition(self, state: S, actions: Mapping[int, Any]) -> tuple[S, list[Event]]:
        """Apply already validated actions of all acting seats."""

    @abstractmethod
    def view(self, state: S, seat: int) -> dict[str, Any]:
        """The seat's private facts plus the public record, as plain data."""

    @abstractmethod
    def legal_actions(self, state: S, seat: int) -> tuple[str, ...]:
        """Hints of the legal actions in the game's text format."""

    @abstractmethod
    def random_action(self, state: S, seat: int, rng: random.Random) -> str:
        """A uniformly drawn legal action text for an acting seat (random play, tests, PettingZoo)."""

    @abstractmethod
    def hidden_from(self, state: S, observer: int) -> list[str]:
        """What the observer must not find in its view, its visible events or its prompts now:
        other seats' private facts (secret words, cards, valuations, hidden roles) that the rules
        have not revealed, as view entries (`view_entry(key, value)`) and as the phrases the
        game's events and prompts write them in. The conformance suite holds games to it."""

    def known_role(self, state: S, seat: int) -> str:
        """What the seat knows of its own role (the observation's `role`): its role, unless the
        game keeps that from the seat until the rules reveal it."""
        return self.role(state, seat)

    def team(self, state: S, seat: int) -> str | None:
        """The seat's team, for games with teams."""
        return None

    def default_action(self, state: S, seat: int) -> str | None:
        """Action text used when a seat misses its turn and the fallback is `default`."""
        return None

    # --- the shared flow -------------------------------------------------------------------
    def num_players(self) -> int:
        """The seats of this table: `players_param`'s value, or the spec's one fixed count."""
        if self.players_param is not None:
            return int(getattr(self.params, self.players_param))
        if self.spec.min_players != self.spec.max_players:
            raise TypeError(f"{self.spec.id} allows {self.spec.min_players}-{self.spec.max_players} seats but "
                            "names no players_param")
        return self.spec.min_players

    def acting(self, state: S) -> frozenset[int]:
        """Seats that act now: none once the match is over."""
        return frozenset() if state.finished else self._acting(state)

    @classmethod
    def has_heuristic(cls) -> bool:
        return cls.heuristic is not None

    def value(self, state: S, seat: int) -> float:
        """The seat's outcome once the match is over, the game's heuristic before."""
        if state.finished:
            return state.outcome[seat]
        if self.heuristic is None:
            raise NotImplementedError(f"{self.spec.id} has no value heuristic; use the rollout or judge estimator")
        return type(self).heuristic(self, state, seat)

    def validate(self, state: S, seat: int, text: str) -> Any:
        """Check turn order and legality of `text` for `seat`; returns the parsed action."""
        if state.finished:
            raise MatchOver("the match has ended")
        if seat not in self.acting(state):
            raise NotYourTurn(f"seat {seat} is not acting now (acting: {sorted(self.acting(state))})")
        return self.parse(state, seat, text)

    def step(self, state: S, texts: Mapping[int, str]) -> tuple[S, list[Event]]:
        """Validate and apply one action text per acting seat (all of them, for simultaneous phases)."""
        self._all_acting(state, texts)
        return self.transition(state, {seat: self.validate(state, seat, text) for seat, text in texts.items()})

    def apply(self, state: S, actions: Mapping[int, Any]) -> tuple[S, list[Event]]:
        """Apply actions `validate` already returned, one per acting seat, without parsing again."""
        self._all_acting(state, actions)
        return self.transition(state, actions)

    def _all_acting(self, state: S, by_seat: Mapping[int, Any]) -> None:
        if set(by_seat) != set(self.acting(state)):
            raise NotYourTurn(f"expected actions from seats {sorted(self.acting(state))}, got {sorted(by_seat)}")

    def forfeit(self, state: S, seat: int, reason: str) -> tuple[S, list[Event]]:
        """End the match: the forfeiting seat (its whole team, where teams exist) gets the lowest
        outcome, every other seat 0."""
        low = self.spec.outcome_bounds[0]
        if self.spec.teams:
            losers = {s for s in range(self.num_players()) if self.team(state, s) == self.team(state, seat)}
        else:
            losers = {seat}
        outcome = tuple(low if s in losers else 0.0 for s in range(self.num_players()))
        end = Event("forfeit", f"seat {seat} forfeits: {reason}", seat=seat)
        return self.finish(state, outcome, f"forfeit by seat {seat}"), [end]

    def fallback_action(self, state: S, seat: int) -> str | None:
        """The invalid-action policy's last step for a seat out of time or retries: the action
        text to play for it (`default` games), or None when it forfeits."""
        return self.default_action(state, seat) if self.spec.fallback == "default" else None

    def finish(self, state: S, outcome: Sequence[float], reason: str) -> S:
        low, high = self.spec.outcome_bounds
        clipped = tuple(float(min(high, max(low, z))) for z in outcome)
        return state.model_copy(update={"finished": True, "outcome": clipped, "end_reason": reason})

    def observe(self, state: S, seat: int) -> Observation:
        acting = seat in self.acting(state) and not state.finished
        return Observation(
            seat=seat,
            role=self.known_role(state, seat),
            view=self.view(state, seat),
            legal_actions=self.legal_actions(state, seat) if acting else (),
            acting=acting,
        )

    # --- snapshots and chance ----------------------------------------------------------------
    def snapshot(self, state: S) -> str:
        return state.model_dump_json()

    def restore(self, snapshot: str) -> S:
        return self.state_model.model_validate_json(snapshot)  # type: ignore[return-value]

    @staticmethod
    def chance(state: State, draw: Callable[[random.Random], T]) -> tuple[T, int]:
        """A chance step from the state's own seeded generator: returns the drawn value and the
        generator state to store in the next state, so replays draw the same."""
        rng = random.Random(state.rng_state)
        value = draw(rng)
        return value, rng.getrandbits(63)
