"""The pure game engine: game specs, typed immutable states, the shared step flow and the registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
import importlib
import pkgutil
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

# The rules' errors, importable from the engine with everything else a game needs.
from maro.arena.errors import GameError, InvalidAction, MatchOver, NotYourTurn, UnknownGame  # noqa: F401

Fallback = Literal["forfeit", "default"]



@dataclass(frozen=True)
class GameSpec:
    """What a game is, declared as data before any state exists."""

    id: str
    description: str
    roles: tuple[str, ...]
    min_players: int
    max_players: int
    action_format: str
    fallback: Fallback = "forfeit"
    """What a seat that misses its turn or exhausts its retries gets: `forfeit` ends the match
    against it; `default` plays `Game.default_action` for it (simultaneous phases need this)."""
    outcome_bounds: tuple[float, float] = (-1.0, 1.0)
    teams: tuple[str, ...] = ()
    """Team names when seats win or lose together (their outcomes are then equal)."""
    win_threshold: float = 0.0
    """An outcome above this counts as a win in win-rate statistics."""
    reveal_roles_at_end: bool = True
    """Whether every seat learns every role when the match ends."""

    def __post_init__(self):
        problems = []
        if not self.id or any(c.isspace() for c in self.id):
            problems.append("an id without spaces")
        if not self.roles or any(not r for r in self.roles):
            problems.append("at least one role, none empty")
        if not 1 <= self.min_players <= self.max_players:
            problems.append(f"1 <= min_players <= max_players (got {self.min_players}, {self.max_players})")
        if not self.outcome_bounds[0] < self.outcome_bounds[1]:
            problems.append(f"outcome bounds low < high (got {self.outcome_bounds})")
        if not self.outcome_bounds[0] <= self.win_threshold <= self.outcome_bounds[1]:
            problems.append("a win threshold within the outcome bounds")
        if problems:
            raise ValueError(f"game spec {self.id!r} needs " + "; ".join(problems))


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


S = TypeVar("S", bound=State)
P = TypeVar("P", bound=Params)
T = TypeVar("T")


class Game(ABC, Generic[S, P]):
    """A game's rules as a state machine; the step flow shared by all games lives here."""

    spec: ClassVar[GameSpec]
    params_model: ClassVar[type[Params]]
    state_model: ClassVar[type[State]]
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

    def _value(self, state: S, seat: int) -> float:
        """A cheap heuristic of the seat's expected outcome in [-1, 1] in an unfinished state
        (MARO's `game` estimator). Optional: a game without one leaves it out, and MARO then
        estimates with rollouts or a judge."""
        raise NotImplementedError(f"{self.spec.id} has no value heuristic; use the rollout or judge estimator")

    @classmethod
    def has_heuristic(cls) -> bool:
        return cls._value is not Game._value

    @classmethod
    @abstractmethod
    def render_prompt(cls, view: Mapping[str, Any], legal_actions: Sequence[str]) -> list[dict]:
        """Chat messages for a model playing from this observation view (with one worked example)."""

    @classmethod
    @abstractmethod
    def check_text(cls, view: Mapping[str, Any], text: str) -> str:
        """What a player can check before sending: the canonical action in `text`, judged from
        the seat's view alone, or InvalidAction with the reason. The arena still decides."""

    @abstractmethod
    def random_action(self, state: S, seat: int, rng: random.Random) -> str:
        """A uniformly drawn legal action text for an acting seat (random play, tests, PettingZoo)."""

    @abstractmethod
    def hidden_from(self, state: S, observer: int) -> list[str]:
        """Literal strings the observer must not find in its view or visible events now:
        other seats' private facts (secret words, cards, valuations, hidden roles as written in
        the views) that the rules have not revealed. The conformance suite holds games to it."""

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

    def value(self, state: S, seat: int) -> float:
        """The seat's outcome once the match is over, the game's heuristic before."""
        return state.outcome[seat] if state.finished else self._value(state, seat)

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
        view = self.view(state, seat)
        return Observation(
            seat=seat,
            # What the seat knows of its own role: games where seats don't know it say so in the view.
            role=str(view.get("role", self.role(state, seat))),
            view=view,
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


class GameRegistry:
    """Game classes by id. `GAMES` is the process's registry (the built-in games register on
    first use); tests and embedders build their own and add throwaway games to it."""

    def __init__(self, loader: Callable[[], None] | None = None):
        self._classes: dict[str, type[Game]] = {}
        self._loader = loader

    def _load(self) -> None:
        if self._loader is not None:
            loader, self._loader = self._loader, None  # games register while it runs
            try:
                loader()
            except BaseException:
                self._loader = loader  # a broken game module: retried, and failing, on the next use
                raise

    def add(self, cls: type[Game]) -> type[Game]:
        """Register `cls` under its spec id; a `default` fallback needs a `default_action`."""
        spec = cls.spec
        if spec.id in self._classes:
            raise ValueError(f"game {spec.id!r} registered twice")
        if spec.fallback == "default" and cls.default_action is Game.default_action:
            raise ValueError(f"game {spec.id!r} declares the default fallback but no default_action")
        self._classes[spec.id] = cls
        return cls

    def ids(self) -> list[str]:
        self._load()
        return sorted(self._classes)

    def get(self, game_id: str) -> type[Game]:
        self._load()
        try:
            return self._classes[game_id]
        except KeyError:
            raise UnknownGame(f"unknown game {game_id!r}; known: {', '.join(sorted(self._classes))}") from None

    def make(self, game_id: str, params: Mapping[str, Any] | None = None) -> Game:
        return self.get(game_id)(params)


def _load_builtin() -> None:
    """Import every module of maro.arena.games; games register themselves on import."""
    import maro.arena.games as package

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")


GAMES = GameRegistry(_load_builtin)


def register(cls: type[Game]) -> type[Game]:
    """Class decorator: add a game to the process's registry."""
    return GAMES.add(cls)


def game_ids() -> list[str]:
    return GAMES.ids()


def make_game(game_id: str, params: Mapping[str, Any] | None = None) -> Game:
    return GAMES.make(game_id, params)


def game_class(game_id: str) -> type[Game]:
    return GAMES.get(game_id)


def seating(game_id: str, params: Mapping[str, Any] | None = None,
            players: int | None = None) -> tuple[dict[str, Any], int]:
    """The parameters of a table of `players` seats and the seat count they give: games with a
    variable size take it as their `players_param`, others must have that count; without
    `players`, the count the parameters (or the defaults) give. ValueError says what is wrong."""
    cls = game_class(game_id)
    params = dict(params or {})
    spec = cls.spec
    if players is not None:
        if not spec.min_players <= players <= spec.max_players:
            raise ValueError(f"{game_id} plays with {spec.min_players}-{spec.max_players} seats, not {players}")
        if cls.players_param is not None:
            key = cls.players_param
            if params.setdefault(key, players) != players:
                raise ValueError(f"{players} players, but the parameters say {key}={params[key]!r}")
    count = make_game(game_id, params).num_players()
    if players is not None and count != players:
        raise ValueError(f"{game_id} with these parameters has {count} seats, not {players}")
    return params, count

