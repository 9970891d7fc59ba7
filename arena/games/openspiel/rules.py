"""OpenSpiel's games as games of ours: `openspiel:<game string>`, e.g. `openspiel:kuhn_poker`,
`openspiel:goofspiel(num_cards=4)`.

The adapter maps OpenSpiel onto the engine exactly:
- a state of ours is the OpenSpiel action history (chance outcomes, moves, joint moves of
  simultaneous nodes), which is what OpenSpiel's own serialisation writes; the pyspiel state is
  rebuilt from it by replaying (kept in a small cache, so a match steps without replays);
- chance nodes are resolved at once from the match's seeded generator (`Game.chance`) with
  OpenSpiel's outcome probabilities, so no state of ours waits on chance; games whose chance is
  sampled inside OpenSpiel are played only where a `rng_seed` parameter lets the match's seed
  fix it;
- each seat sees only its `information_state_string` and `observation_string` (what OpenSpiel
  provides), its legal actions and, in perfect-information games, the moves; in games with
  imperfect information a seat's moves are private to it, the others learn that it moved;
- actions are `action_to_string` texts in our bracket format (`[Bet]`, `[x(1,1)]`);
- OpenSpiel's returns are scaled from [min_utility, max_utility] into the outcome bounds [-1, 1].

Supported: sequential and simultaneous games, with or without chance, perfect or imperfect
information, 2 or more players, at most `MAX_MOVES` moves and `MAX_ACTIONS` distinct actions.
Refused with the reason: one-player and mean-field games, games that cannot be loaded from
parameters alone, games without per-player strings, and parameters outside the bounds below.
"""

from __future__ import annotations

import functools
import random
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Any

import maro.arena.games.openspiel.text as text
from maro.arena.engine import (
    CatalogueEntry,
    Event,
    Game,
    GameFamily,
    GameSpec,
    Params,
    State,
    UnknownGame,
    view_entry,
)

PREFIX = "openspiel"
MAX_MOVES = 1000
"""The longest game (OpenSpiel's `max_game_length`) a match may be."""
MAX_ACTIONS = 5000
"""The most distinct actions a game may have."""
MAX_INT_PARAM = 1000
MAX_STR_PARAM = 100
MAX_PARAMS = 12
_CACHE_STATES = 64


def _pyspiel():
    try:
        import pyspiel
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise UnknownGame(f"OpenSpiel games need the `open-spiel` package ({exc})") from exc
    return pyspiel


class SpielParams(Params):
    """The id carries OpenSpiel's parameters; the game takes none of ours."""


class SpielState(State):
    """The OpenSpiel history: one tuple per step, `(action,)` or a simultaneous node's joint move."""

    moves: tuple[tuple[int, ...], ...] = ()
    seed: int = 0
    """The match's seed, for games whose chance OpenSpiel samples from its `rng_seed`."""


def _check_params(params: Mapping[str, Any], where: str = "") -> None:
    if len(params) > MAX_PARAMS:
        raise UnknownGame(f"{len(params)} parameters; at most {MAX_PARAMS}")
    for key, value in params.items():
        name = f"{where}{key}"
        if any(word in key.lower() for word in ("file", "path", "dir")):
            raise UnknownGame(f"parameter {name!r} names a file, which the arena does not open")
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            if abs(value) > MAX_INT_PARAM:
                raise UnknownGame(f"parameter {name}={value} is outside [-{MAX_INT_PARAM}, {MAX_INT_PARAM}]")
        elif isinstance(value, str):
            if len(value) > MAX_STR_PARAM or "/" in value:
                raise UnknownGame(f"parameter {name!r} must be at most {MAX_STR_PARAM} characters and no path")
        else:
            raise UnknownGame(f"parameter {name!r} is a nested game or a list, which the adapter does not take")


def refusal(game) -> str:
    """Why the adapter cannot seat this loaded OpenSpiel game ("" when it can)."""
    pyspiel = _pyspiel()
    kind = game.get_type()
    if kind.dynamics not in (pyspiel.GameType.Dynamics.SEQUENTIAL, pyspiel.GameType.Dynamics.SIMULTANEOUS):
        return f"{kind.dynamics.name.lower()} dynamics (only sequential and simultaneous games)"
    if game.num_players() < 2:
        return "a one-player game (the arena seats 2 or more)"
    if not (kind.provides_information_state_string or kind.provides_observation_string):
        return "no per-player information state or observation strings"
    if kind.chance_mode == pyspiel.GameType.ChanceMode.SAMPLED_STOCHASTIC and "rng_seed" not in game.get_parameters():
        return "chance sampled inside OpenSpiel without an rng_seed parameter, so a match could not be replayed"
    if game.max_game_length() > MAX_MOVES:
        return f"up to {game.max_game_length()} moves, more than the arena's {MAX_MOVES}"
    if game.num_distinct_actions() > MAX_ACTIONS:
        return f"{game.num_distinct_actions()} distinct actions, more than the arena's {MAX_ACTIONS}"
    try:
        low, high = game.min_utility(), game.max_utility()
    except Exception:  # noqa: BLE001 - pyspiel raises SpielError for games without bounds
        return "no utility bounds to scale returns into outcomes"
    if not low < high:
        return f"utility bounds [{low}, {high}] are empty"
    return ""


def load(game_id: str):
    """(canonical id, pyspiel game) for `openspiel:<game string>`; UnknownGame says why not."""
    pyspiel = _pyspiel()
    string = game_id.partition(":")[2].strip()
    if not string:
        raise UnknownGame("an OpenSpiel id names a game: openspiel:kuhn_poker, openspiel:goofspiel(num_cards=4)")
    try:
        params = pyspiel.game_parameters_from_string(string)
    except Exception as exc:  # noqa: BLE001
        raise UnknownGame(f"{game_id!r} is not an OpenSpiel game string: {exc}") from None
    name = params.pop("name", string)
    _check_params(params)
    kinds = {t.short_name: t for t in pyspiel.registered_games()}
    if name not in kinds:
        raise UnknownGame(f"OpenSpiel has no game {name!r} (`maro games --all` lists them)")
    if not kinds[name].default_loadable and not params:
        raise UnknownGame(f"openspiel:{name} cannot be loaded without parameters naming other games or files")
    try:
        game = pyspiel.load_game(name, params)
    except Exception as exc:  # noqa: BLE001
        raise UnknownGame(f"OpenSpiel cannot load {string!r}: {str(exc).strip().splitlines()[-1]}") from None
    reason = refusal(game)
    if reason:
        raise UnknownGame(f"openspiel:{name} is not supported: {reason}")
    canonical = str(game)
    return f"{PREFIX}:{canonical[:-2] if canonical.endswith('()') else canonical}", game


class OpenSpielGame(Game[SpielState, SpielParams]):
    """The rules of one OpenSpiel game (one subclass per id, made by `resolve`)."""

    params_model = SpielParams
    state_model = SpielState
    spiel_game: Any = None
    """The loaded pyspiel game (for games sampled from `rng_seed`: the one of seed 0)."""

    def __init__(self, params=None):
        super().__init__(params)
        self._states: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()

    # --- pyspiel states ---------------------------------------------------------------------
    @classmethod
    def _seeded(cls) -> bool:
        return "rng_seed" in cls.spiel_game.get_parameters() and \
            cls.spiel_game.get_type().chance_mode == _pyspiel().GameType.ChanceMode.SAMPLED_STOCHASTIC

    def _game_for(self, seed: int):
        if not self._seeded():
            return self.spiel_game
        params = {**self.spiel_game.get_parameters(), "rng_seed": seed % (2**31)}
        return _pyspiel().load_game(self.spiel_game.get_type().short_name, params)

    def spiel_state(self, state: SpielState):
        """The pyspiel state of `state` (a copy the caller may change)."""
        key = (state.seed, state.moves)
        with self._lock:
            found = self._states.get(key)
            if found is not None:
                self._states.move_to_end(key)
                return found.clone()
        found = self._game_for(state.seed).new_initial_state()
        for move in state.moves:
            if found.is_simultaneous_node():
                found.apply_actions(list(move))
            else:
                found.apply_action(move[0])
        self._keep(key, found)
        return found.clone()

    def _keep(self, key: tuple, spiel) -> None:
        with self._lock:
            self._states[key] = spiel.clone()
            while len(self._states) > _CACHE_STATES:
                self._states.popitem(last=False)

    def _settle(self, state: SpielState, spiel, events: list[Event]) -> SpielState:
        """Resolve chance nodes from the match's generator, then finish at a terminal."""
        moves, rng_state = list(state.moves), state.rng_state
        perfect = self._perfect()
        while spiel.is_chance_node():
            outcomes = spiel.chance_outcomes()
            rng = random.Random(rng_state)
            action = rng.choices([a for a, _ in outcomes], weights=[p for _, p in outcomes])[0]
            rng_state = rng.getrandbits(63)
            if perfect:
                events.append(Event("chance", f"Chance: {spiel.action_to_string(-1, action)}."))
            spiel.apply_action(action)
            moves.append((action,))
        state = state.model_copy(update={"moves": tuple(moves), "rng_state": rng_state})
        self._keep((state.seed, state.moves), spiel)
        if spiel.is_terminal():
            low, high = self.spiel_game.min_utility(), self.spiel_game.max_utility()
            returns = spiel.returns()
            outcome = [2 * (r - low) / (high - low) - 1 for r in returns]
            shown = ", ".join(f"player {p} {r:g}" for p, r in enumerate(returns))
            events.append(Event("end", f"The game is over. Returns: {shown}."))
            state = self.finish(state, outcome, f"game over (returns {shown})")
        return state

    def _perfect(self) -> bool:
        return self.spiel_game.get_type().information == _pyspiel().GameType.Information.PERFECT_INFORMATION

    def _texts(self, spiel, seat: int) -> dict[int, str]:
        """Legal action id -> its text (brackets turned into parentheses, duplicates numbered)."""
        actions = spiel.legal_actions(seat)
        texts = {a: " ".join(spiel.action_to_string(seat, a).replace("[", "(").replace("]", ")").split())
                 for a in actions}
        counts: dict[str, int] = {}
        for t in texts.values():
            counts[t.casefold()] = counts.get(t.casefold(), 0) + 1
        return {a: (f"{t} #{a}" if counts[t.casefold()] > 1 or not t else t) for a, t in texts.items()}

    # --- the engine's hooks ------------------------------------------------------------------
    def init(self, seed: int) -> tuple[SpielState, list[Event]]:
        rng = random.Random(seed)
        state = SpielState(rng_state=rng.getrandbits(63), seed=seed)
        name = self.spiel_game.get_type().long_name
        events = [Event("start", f"{name} (OpenSpiel {self.spec.id[len(PREFIX) + 1:]}), {self.num_players()} players.")]
        spiel = self._game_for(seed).new_initial_state()
        return self._settle(state, spiel, events), events

    def role(self, state: SpielState, seat: int) -> str:
        return self.spec.roles[seat]

    def _acting(self, state: SpielState) -> frozenset[int]:
        spiel = self.spiel_state(state)
        if spiel.is_simultaneous_node():
            return frozenset(p for p in range(self.num_players()) if spiel.legal_actions(p))
        return frozenset({spiel.current_player()})

    def parse(self, state: SpielState, seat: int, action_text: str) -> int:
        texts = self._texts(self.spiel_state(state), seat)
        return text.match(action_text, texts)

    def transition(self, state: SpielState, actions: Mapping[int, Any]) -> tuple[SpielState, list[Event]]:
        spiel = self.spiel_state(state)
        events: list[Event] = []
        perfect = self._perfect()
        if spiel.is_simultaneous_node():
            joint = [int(actions.get(p, spiel.legal_actions(p)[0] if spiel.legal_actions(p) else 0))
                     for p in range(self.num_players())]
            said = {p: spiel.action_to_string(p, a) for p, a in enumerate(joint)}
            if perfect:
                events.append(Event("moves", "Moves: " + "; ".join(f"player {p} plays {s}" for p, s in said.items())
                                    + "."))
            else:
                events += [Event("move", f"You (player {p}) play {s}.", seat=p, private_to=(p,))
                           for p, s in said.items()]
                events.append(Event("moved", "Every player has moved."))
            spiel.apply_actions(joint)
            move = tuple(joint)
        else:
            (seat, action), = actions.items()
            said = spiel.action_to_string(seat, action)
            if perfect:
                events.append(Event("move", f"Player {seat} plays {said}.", seat=seat))
            else:
                events.append(Event("move", f"You (player {seat}) play {said}.", seat=seat, private_to=(seat,)))
                events.append(Event("moved", f"Player {seat} has moved.", seat=seat))
            spiel.apply_action(int(action))
            move = (int(action),)
        state = state.model_copy(update={"moves": state.moves + (move,)})
        return self._settle(state, spiel, events), events

    def view(self, state: SpielState, seat: int) -> dict[str, Any]:
        spiel = self.spiel_state(state)
        kind = self.spiel_game.get_type()
        acting = not state.finished and seat in self._acting(state)
        view: dict[str, Any] = {"game": self.spec.id, "role": self.spec.roles[seat], "seat": seat,
                                "players": self.num_players()}
        if kind.provides_information_state_string:
            view["information_state"] = spiel.information_state_string(seat)
        if kind.provides_observation_string:
            view["observation"] = spiel.observation_string(seat)
        view["legal"] = [[a, t] for a, t in self._texts(spiel, seat).items()] if acting else []
        view["finished"] = state.finished
        view["end_reason"] = state.end_reason
        return view

    def legal_actions(self, state: SpielState, seat: int) -> tuple[str, ...]:
        return tuple(f"[{t}]" for t in self._texts(self.spiel_state(state), seat).values())

    def random_action(self, state: SpielState, seat: int, rng: random.Random) -> str:
        return rng.choice(self.legal_actions(state, seat))

    def default_action(self, state: SpielState, seat: int) -> str | None:
        legal = self.legal_actions(state, seat)
        return legal[0] if legal else None

    def hidden_from(self, state: SpielState, observer: int) -> list[str]:
        # What another seat's strings hold where they differ from the observer's own.
        if state.finished:
            return []
        spiel = self.spiel_state(state)
        kind = self.spiel_game.get_type()
        hidden = []
        for other in range(self.num_players()):
            if other == observer:
                continue
            for key, provided, read in (("information_state", kind.provides_information_state_string,
                                         spiel.information_state_string),
                                        ("observation", kind.provides_observation_string, spiel.observation_string)):
                if provided and read(other) != read(observer):
                    hidden.append(view_entry(key, read(other)))
        return hidden


def resolve(game_id: str) -> type[OpenSpielGame]:
    """The game class of an OpenSpiel id (made once per canonical id by the registry)."""
    canonical, game = load(game_id)
    return _make_class(canonical, game)


def _make_class(canonical: str, game) -> type[OpenSpielGame]:
    pyspiel = _pyspiel()
    kind = game.get_type()
    n = game.num_players()
    simultaneous = kind.dynamics == pyspiel.GameType.Dynamics.SIMULTANEOUS
    spec = GameSpec(
        id=canonical,
        description=f"{kind.long_name} from OpenSpiel ({text.describe(game)}).",
        roles=tuple(f"player_{p}" for p in range(n)),
        min_players=n,
        max_players=n,
        action_format="[<one legal action, as listed>]",
        fallback="default" if simultaneous else "forfeit",
        win_threshold=0.0,
        reveal_roles_at_end=True,
    )
    name = "OpenSpiel_" + "".join(c if c.isalnum() else "_" for c in canonical[len(PREFIX) + 1:])
    return type(name, (OpenSpielGame,), {"spec": spec, "spiel_game": game, "game_text": text.game_text(game),
                                         "__module__": __name__})


@functools.cache
def catalogue() -> tuple[CatalogueEntry, ...]:
    """Every OpenSpiel game at its default parameters: supported, or refused with the reason."""
    pyspiel = _pyspiel()
    found = []
    for kind in pyspiel.registered_games():
        gid = f"{PREFIX}:{kind.short_name}"
        players = f"{kind.min_num_players}" if kind.min_num_players == kind.max_num_players \
            else f"{kind.min_num_players}-{kind.max_num_players}"
        try:
            if not kind.default_loadable:
                raise UnknownGame("it cannot be loaded without parameters naming other games or files")
            gid, game = load(gid)
            entry = CatalogueEntry(gid, str(game.num_players()), f"{kind.long_name} ({text.describe(game)})")
        except UnknownGame as exc:
            reason = str(exc).split(" is not supported: ")[-1]
            entry = CatalogueEntry(gid, players, kind.long_name, refused=reason)
        found.append(entry)
    return tuple(found)


def supported() -> Iterator[str]:
    """The ids of every supported OpenSpiel game at its default parameters."""
    return (e.id for e in catalogue() if not e.refused)


FAMILY = GameFamily(PREFIX, resolve, catalogue)
