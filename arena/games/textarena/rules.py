"""TextArena's environments as games of ours: `textarena:<environment id>`, e.g.
`textarena:KuhnPoker-v0`, `textarena:SecretMafia-v0` (TextArena 0.7.4, pinned: its current
repository has another API).

How an environment maps onto the engine:
- a state of ours is the match's seed, its seat count and the action texts submitted so far; the
  environment (the raw one, without TextArena's observation wrappers) is rebuilt from them by
  `reset(num_players, seed)` and replaying the actions, and live copies are kept in a small cache,
  so a match steps without replays. TextArena draws its chance from Python's (and numpy's) global
  generators: every call into an environment runs under one lock with the process's generators
  swapped for the match's own, so matches do not disturb each other or the process;
- each seat sees exactly the messages TextArena gives that player (its prompt, the game's
  messages to it, the broadcasts), in order; a message TextArena sends to some players only is an
  event private to them;
- an action is the seat's reply text, which the environment parses itself. Whether it is valid is
  tried first on a copy of the environment: where TextArena would record an invalid move, we
  refuse the action with TextArena's reason instead, and our invalid-action policy (retries, then
  the fallback) decides what follows, not TextArena's error allowance;
- TextArena's rewards are clipped into the outcome bounds [-1, 1];
- an exception inside the environment's own code raises GameCrashed: the match is aborted with
  that reason, and nothing else is touched (TextArena's users report such crashes).

Snapshots are best effort where an environment iterates over unordered sets or keeps state it
does not draw from the generators above: a match replayed in another process could then differ.

Refused with the reason: one-player environments, environments that judge or play with a hosted
model (an OpenRouter key), environments needing data that cannot be had offline (NLTK corpora,
files the package does not ship) and environments that fail to import.
"""

from __future__ import annotations

import copy
import functools
import random
import re
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import Field, create_model

import maro.arena.games.textarena.envs as envs
import maro.arena.games.textarena.moves as moves
import maro.arena.games.textarena.text as text
from maro.arena.engine import CatalogueEntry, Event, Game, GameFamily, GameSpec, Params, State, UnknownGame
from maro.arena.errors import GameCrashed, InvalidAction
from maro.arena.games.textarena.envs import canonical, env_class, probe, role_of

PREFIX = "textarena"
MAX_STEPS = 500
"""Actions of a match before it ends as a draw (most environments end far sooner)."""
MAX_VIEW_MESSAGES = 80
"""The most recent messages a view carries."""
CANDIDATES = 16
"""Bracketed actions from the seat's recent messages tried as legal-action hints per turn."""
MAX_LEGAL = 32
"""The most legal actions offered in one turn (a sample, the same on every replay, where the
board allows more)."""
FREE_TEXT = "I have nothing to add."
_CACHE_TABLES = 64
_BRACKET = re.compile(r"\[[^\[\]\n]{1,40}\]")


class _Invalid(Exception):
    """Raised in a trial copy where TextArena would record an invalid move."""


@dataclass(frozen=True)
class Table:
    """One live environment after some actions, with what each seat has been told."""

    env: Any
    randoms: tuple
    logs: tuple[tuple[tuple[str, str, str], ...], ...]
    """Per seat: (speaker, kind, text) of every message TextArena gave it, in order."""
    done: bool = False


class TextArenaState(State):
    """The seed, the seat count and the action texts submitted so far."""

    seed: int = 0
    players: int = 2
    actions: tuple[str, ...] = ()


class TextArenaGame(Game[TextArenaState, Params]):
    """The rules of one TextArena environment (one subclass per id, made by `resolve`)."""

    state_model = TextArenaState
    players_param = "players"
    env_id: str = ""
    player_counts: tuple[int, ...] = (2,)

    def __init__(self, params=None):
        super().__init__(params)
        if self.params.players not in self.player_counts:
            raise ValueError(f"{self.spec.id} seats {', '.join(map(str, self.player_counts))} players, "
                             f"not {self.params.players}")
        self._tables: OrderedDict[tuple, Table] = OrderedDict()
        self._hints: OrderedDict[tuple, tuple[str, ...]] = OrderedDict()

    # --- environments -----------------------------------------------------------------------
    def _call(self, randoms: tuple, what: str, call):
        """Run `call()` in the environment with the match's generators; (result, new randoms)."""
        generators = envs.Generators(randoms)
        try:
            with generators.around():
                result = call()
        except _Invalid:
            raise
        except Exception as exc:  # noqa: BLE001 - the environment's own bug aborts its match only
            raise GameCrashed(f"the game crashed: TextArena's {self.env_id} raised {type(exc).__name__} "
                              f"in {what}") from exc
        return result, generators.randoms

    def _start(self, state: TextArenaState) -> tuple[Table, list]:
        cls, kwargs = env_class(self.env_id)

        def start():
            made = cls(**kwargs)
            made.reset(num_players=state.players, seed=state.seed)
            return made

        env, randoms = self._call(envs.fresh_randoms(state.seed), "reset", start)
        messages = envs.drain(env, state.players)
        logs = tuple(tuple((s, k, t) for r, s, k, t, _ in messages if seat in r) for seat in range(state.players))
        return Table(env, randoms, logs), messages

    def _stepped(self, table: Table, action: str, trial: bool) -> tuple[Table, list]:
        """The table after `action` (on a copy); with `trial`, TextArena's invalid moves raise _Invalid."""
        try:
            env = copy.deepcopy(table.env)
        except Exception as exc:  # noqa: BLE001 - an environment holding something uncopyable
            raise GameCrashed(f"the game crashed: TextArena's {self.env_id} cannot be copied "
                              f"({type(exc).__name__})") from exc
        game_state = env.state
        if trial:
            def refuse(*args, **kwargs):
                reason = kwargs.get("reason", args[0] if args else "")
                raise _Invalid(str(reason or "the game refused this move"))
            game_state.set_invalid_move = refuse
        try:
            (done, _), randoms = self._call(table.randoms, "step", lambda: env.step(action))
        finally:
            if trial:
                del game_state.set_invalid_move
        messages = envs.drain(env, len(table.logs))
        logs = tuple(log + tuple((s, k, t) for r, s, k, t, _ in messages if seat in r)
                     for seat, log in enumerate(table.logs))
        return Table(env, randoms, logs, bool(done) or bool(getattr(env.state, "done", False))), messages

    def table(self, state: TextArenaState) -> Table:
        """The live environment of `state` (do not change it: copy it)."""
        key = (state.seed, state.players, state.actions)
        with envs.LOCK:
            if key in self._tables:
                self._tables.move_to_end(key)
                return self._tables[key]
        table, _ = self._start(state)
        for action in state.actions:
            table, _ = self._stepped(table, action, trial=False)
        self._keep(key, table)
        return table

    def _keep(self, key: tuple, table: Table) -> None:
        with envs.LOCK:
            self._tables[key] = table
            while len(self._tables) > _CACHE_TABLES:
                self._tables.popitem(last=False)

    def _try(self, state: TextArenaState, action: str, keep: bool = True) -> list:
        """Step a copy with `action` and return its messages (with `keep`, the stepped copy is
        cached for the state after it). InvalidAction with TextArena's reason where it would
        record an invalid move."""
        try:
            table, messages = self._stepped(self.table(state), action, trial=True)
        except _Invalid as exc:
            raise InvalidAction(str(exc)[:300]) from None
        if keep:
            self._keep((state.seed, state.players, state.actions + (action,)), table)
        return messages

    def hints(self, state: TextArenaState, seat: int) -> tuple[str, ...]:
        """The actions the environment accepts from the acting `seat` now: the bracketed actions
        of its recent messages and of its first (the rules), the most recent first, then the
        moves its family spells from the board (`moves.py`). Empty for a seat not acting."""
        key = (state.seed, state.players, state.actions, seat)
        with envs.LOCK:
            if key in self._hints:
                return self._hints[key]
        table = self.table(state)
        if state.finished or table.done or seat not in self._acting(state):
            return ()
        found: list[str] = []
        log = table.logs[seat]
        for _, _, said in [*reversed(log[1:][-8:]), *log[:1]]:
            for candidate in _BRACKET.findall(said):
                if candidate not in found:
                    found.append(candidate)
        listed = found[:CANDIDATES]
        turn = random.Random(f"{state.seed}:{len(state.actions)}:{seat}")
        with envs.LOCK:
            generated = [m for m in moves.candidates(table.env, seat, turn) if m not in listed]
        # the generated moves are tried in an order drawn from the turn's generator, so that where
        # more than MAX_LEGAL are legal the sample is spread over the board, then shown in their order
        trials = turn.sample(generated, len(generated))
        accepted: set[str] = set()
        for candidate in [*listed, *trials]:
            if len(accepted) >= MAX_LEGAL:
                break
            try:
                self._try(state, candidate, keep=False)
                accepted.add(candidate)
            except (InvalidAction, GameCrashed):  # a move the environment's own code fails on is none
                pass
        valid = [m for m in [*listed, *generated] if m in accepted]
        with envs.LOCK:
            self._hints[key] = hints = tuple(valid)
            while len(self._hints) > _CACHE_TABLES:
                self._hints.popitem(last=False)
        return hints

    # --- the engine's hooks -----------------------------------------------------------------
    def init(self, seed: int) -> tuple[TextArenaState, list[Event]]:
        state = TextArenaState(rng_state=seed, seed=seed, players=self.num_players())
        table, messages = self._start(state)
        self._keep((state.seed, state.players, ()), table)
        events = [Event("start", f"TextArena {self.env_id}, {state.players} players.")] + self._events(messages)
        return self._settle(state, table, events), events

    def _events(self, messages: list) -> list[Event]:
        everyone = set(range(self.num_players()))
        out = []
        for recipients, speaker, kind, said, sender in messages:
            seat = sender if isinstance(sender, int) and sender >= 0 else None
            private = () if set(recipients) == everyone else recipients
            out.append(Event(kind, f"{speaker}: {said}", seat=seat, private_to=private))
        return out

    def _settle(self, state: TextArenaState, table: Table, events: list[Event]) -> TextArenaState:
        if not table.done and len(state.actions) < MAX_STEPS:
            return state
        if not table.done:
            events.append(Event("end", f"The match reached the arena's limit of {MAX_STEPS} actions: a draw."))
            return self.finish(state, [0.0] * state.players, f"a draw at the limit of {MAX_STEPS} actions")
        game_state = table.env.state
        rewards = getattr(game_state, "rewards", None) or {}
        outcome = [max(-1.0, min(1.0, float(rewards.get(p, 0.0) or 0.0))) for p in range(state.players)]
        info = getattr(game_state, "game_info", {}) or {}
        reasons = [str(v.get("reason", "")) for v in info.values() if isinstance(v, dict) and v.get("reason")]
        reason = (reasons[0] if reasons else "the game is over")[:300]
        events.append(Event("end", f"The game is over: {reason}"))
        return self.finish(state, outcome, reason)

    def role(self, state: TextArenaState, seat: int) -> str:
        return role_of(self.table(state).env, seat)

    def _acting(self, state: TextArenaState) -> frozenset[int]:
        return frozenset({int(self.table(state).env.state.current_player_id)})

    def parse(self, state: TextArenaState, seat: int, action_text: str) -> str:
        action = text.checked(action_text)
        self._try(state, action)
        return action

    def transition(self, state: TextArenaState, actions: Mapping[int, Any]) -> tuple[TextArenaState, list[Event]]:
        (seat, action), = actions.items()
        before = self.table(state)
        table, messages = self._stepped(before, action, trial=False)
        state = state.model_copy(update={"actions": state.actions + (action,)})
        self._keep((state.seed, state.players, state.actions), table)
        events = self._events(messages)
        return self._settle(state, table, events), events

    def view(self, state: TextArenaState, seat: int) -> dict[str, Any]:
        table = self.table(state)
        acting = not state.finished and seat in self._acting(state)
        return {
            "game": self.spec.id, "seat": seat, "role": role_of(table.env, seat), "players": state.players,
            "messages": [list(m) for m in table.logs[seat][-MAX_VIEW_MESSAGES:]],
            "your_turn": acting, "legal": list(self.hints(state, seat)) if acting else [],
            "finished": state.finished, "end_reason": state.end_reason,
        }

    def legal_actions(self, state: TextArenaState, seat: int) -> tuple[str, ...]:
        return self.hints(state, seat)

    def random_action(self, state: TextArenaState, seat: int, rng: random.Random) -> str:
        hints = self.hints(state, seat)
        if hints:
            return rng.choice(hints)
        return FREE_TEXT

    def takes_free_text(self, state: TextArenaState, seat: int) -> bool:
        """Whether the environment takes any text now (a chat turn), so that no reply is invalid."""
        try:
            self._try(state, FREE_TEXT)
            return seat in self.acting(state)
        except InvalidAction:
            return False

    def hidden_from(self, state: TextArenaState, observer: int) -> list[str]:
        # Every message TextArena gave another seat and not the observer, as views and events spell it.
        if state.finished:
            return []
        logs = self.table(state).logs
        own = "\n".join(said for _, _, said in logs[observer])
        hidden = set()
        for seat, log in enumerate(logs):
            if seat != observer:
                for speaker, _, said in log:
                    if said not in own:  # what the observer was told itself is no secret to it
                        hidden.add(f"{speaker}: {said}")
                        hidden.add(text.json_spelling(said))
        return sorted(hidden)


def load(game_id: str) -> tuple[str, str, tuple[int, ...], tuple[str, ...]]:
    """(canonical id, environment id, player counts, roles) of `textarena:<id>`; UnknownGame says why not."""
    env_id = canonical(game_id.partition(":")[2].strip())
    if not env_id:
        raise UnknownGame("a TextArena id names an environment: textarena:KuhnPoker-v0")
    counts, roles = probe(env_id)
    return f"{PREFIX}:{env_id}", env_id, counts, roles


def resolve(game_id: str) -> type[TextArenaGame]:
    canonical_id, env_id, counts, roles = load(game_id)
    params = create_model(
        "TextArenaParams", __base__=Params,
        players=(int, Field(default=counts[0], ge=counts[0], le=counts[-1], description="seats at the table")),
    )
    spec = GameSpec(
        id=canonical_id,
        description=f"TextArena's {env_id} ({text.players(counts)} players).",
        roles=roles,
        min_players=counts[0],
        max_players=counts[-1],
        action_format="the reply the game asks for; bracketed actions as its messages show them",
        fallback="forfeit",
        win_threshold=0.0,
        reveal_roles_at_end=True,
    )
    name = "TextArena_" + "".join(c if c.isalnum() else "_" for c in env_id)
    return type(name, (TextArenaGame,), {"spec": spec, "params_model": params, "env_id": env_id,
                                         "player_counts": counts, "game_text": text.game_text(env_id),
                                         "__module__": __name__})


@functools.cache
def catalogue() -> tuple[CatalogueEntry, ...]:
    """Every TextArena environment (its wrapper variants `-raw`, `-train` folded in): supported,
    or refused with the reason."""
    found = []
    for env_id in sorted({canonical(i) for i in envs.registry()}):
        gid = f"{PREFIX}:{env_id}"
        try:
            _, _, counts, _ = load(gid)
            entry = CatalogueEntry(gid, text.players(counts), f"TextArena's {env_id}")
        except UnknownGame as exc:
            entry = CatalogueEntry(gid, "?", f"TextArena's {env_id}",
                                   refused=str(exc).split(" is not supported: ")[-1])
        found.append(entry)
    return tuple(found)


def supported() -> Iterator[str]:
    return (e.id for e in catalogue() if not e.refused)


FAMILY = GameFamily(PREFIX, resolve, catalogue)
