"""TextArena's environments, found and started offline: the registry, each environment's class and
the player counts and roles it accepts (probed at load), and the match's own generators swapped in
around every call into one (TextArena draws its chance from Python's and numpy's global ones)."""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import io
import random
import re
import sys
import threading
from collections import OrderedDict

from maro.arena.engine import UnknownGame

MAX_PLAYERS = 10
"""The most seats a TextArena match may have (the player counts probed at load)."""
MAX_MESSAGE_CHARS = 4000
"""The longest message a view or an event carries (longer ones are cut, with a mark)."""
_HOSTED = re.compile(r"OpenRouter|Jury|ta\.agents\.")
LOCK = threading.RLock()
"""Held around every call into an environment (the process's generators are swapped meanwhile)."""


def registry():
    try:
        import textarena  # noqa: F401
        from textarena.envs.registration import ENV_REGISTRY
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise UnknownGame(f"TextArena games need the `textarena` package ({exc})") from exc
    return ENV_REGISTRY


@contextlib.contextmanager
def _offline():
    """NLTK's downloader answers "not available" instead of calling out (TextArena's word games
    download corpora on import); the environment then finds its data or refuses."""
    try:
        import nltk
    except ImportError:
        yield
        return
    saved, nltk.download = nltk.download, lambda *args, **kwargs: False
    try:
        yield
    finally:
        nltk.download = saved


class Generators:
    """The match's own Python and numpy generators, swapped in around one environment call."""

    def __init__(self, randoms: tuple):
        self.randoms = randoms

    @contextlib.contextmanager
    def around(self):
        import numpy as np

        with LOCK, _offline(), contextlib.redirect_stdout(io.StringIO()):
            saved = random.getstate(), np.random.get_state()
            random.setstate(self.randoms[0])
            np.random.set_state(self.randoms[1])
            try:
                yield
            finally:
                self.randoms = (random.getstate(), np.random.get_state())
                random.setstate(saved[0])
                np.random.set_state(saved[1])


def fresh_randoms(seed: int) -> tuple:
    import numpy as np

    return random.Random(seed).getstate(), np.random.RandomState(seed % (2**32)).get_state()


def canonical(env_id: str) -> str:
    for suffix in ("-raw", "-train"):
        if env_id.endswith(suffix):
            return env_id[: -len(suffix)]
    return env_id


def env_class(env_id: str):
    """The raw environment class and its keyword arguments; UnknownGame says why not."""
    found = registry()
    spec = found.get(env_id)
    if spec is None:
        raise UnknownGame(f"TextArena has no environment {env_id!r} (`maro games --all` lists them)")
    entry = spec.entry_point
    try:
        if isinstance(entry, str):
            module, _, name = entry.partition(":")
            with LOCK, _offline(), contextlib.redirect_stdout(io.StringIO()):
                entry = getattr(importlib.import_module(module), name)
    except SyntaxError:  # TextArena 0.7.4 has modules written for Python 3.12's f-strings
        raise UnknownGame(f"textarena:{env_id} is not supported: its module does not compile on Python "
                          f"{sys.version_info.major}.{sys.version_info.minor} (f-strings of Python 3.12)") from None
    except Exception as exc:  # noqa: BLE001 - the import's own failure is the reason
        raise UnknownGame(f"textarena:{env_id} is not supported: {reason(exc)}") from None
    try:
        source = inspect.getsource(inspect.getmodule(entry))
    except (OSError, TypeError):
        source = ""
    if _HOSTED.search(source):
        raise UnknownGame(f"textarena:{env_id} is not supported: it judges or plays with a hosted model "
                          "(an OpenRouter key), which the arena never calls for a game")
    return entry, dict(spec.kwargs)


def reason(exc: Exception) -> str:
    if isinstance(exc, LookupError) and "nltk" in str(exc).lower():
        found = re.search(r"Resource (\S+) not found", str(exc))
        name = found.group(1).strip("\x1b[0m") if found else "a corpus"
        return f"it needs NLTK data ({name}) that is not installed, and the arena downloads nothing"
    if isinstance(exc, ModuleNotFoundError):
        return f"it needs a module that is not installed ({exc.name})"
    if isinstance(exc, FileNotFoundError):
        return "it needs data files that the textarena package does not ship"
    return f"it fails to start ({type(exc).__name__}: {str(exc).splitlines()[0][:100] if str(exc) else ''})"


_STATE_CALL = re.compile(r"self\.state\.(\w+)\(")


def _lacking(cls, state) -> set[str]:
    """The methods of `state` that the environment's module calls and `state` does not have."""
    try:
        source = inspect.getsource(inspect.getmodule(cls))
    except (OSError, TypeError):
        return set()
    return {name for name in _STATE_CALL.findall(source) if not hasattr(state, name)}


@functools.cache
def probe(env_id: str) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """(the player counts the environment accepts, the roles it gives) from resets at seeds
    0-2, less the counts its code was not written for; UnknownGame with the reason when it
    cannot seat two or more."""
    cls, kwargs = env_class(env_id)
    counts, roles, failure, solo, lacks = [], set(), None, False, {}
    for n in range(1, MAX_PLAYERS + 1):
        for seed in range(3):
            try:
                with Generators(fresh_randoms(seed)).around():
                    env = cls(**kwargs)
                    env.reset(num_players=n, seed=seed)
            except (AssertionError, ValueError) as exc:
                failure = failure or exc
                break
            except Exception as exc:  # noqa: BLE001 - the environment's own failure is the reason
                raise UnknownGame(f"textarena:{env_id} is not supported: {reason(exc)}") from None
            if n == 1:
                solo = True
                break
            roles.update(role_of(env, p) for p in range(n))
            if seed == 0:
                counts.append(n)
                lacks[n] = _lacking(cls, env.state)
    # a count whose state lacks a method the code calls, that the states of other counts have:
    # the code was written for those (Briscola and Golf at 3+ seats call `set_winner` at their end)
    always = set.intersection(*lacks.values()) if lacks else set()
    counts = [n for n in counts if n >= 2 and not lacks[n] - always]
    if not counts:
        why = "a one-player environment (the arena seats 2 or more)" if solo else \
            f"it seats no count of 2 to {MAX_PLAYERS} players ({reason(failure) if failure else 'no reset'})"
        raise UnknownGame(f"textarena:{env_id} is not supported: {why}")
    return tuple(counts), tuple(sorted(roles))


def role_of(env, seat: int) -> str:
    """The seat's role as TextArena's game info names it, in our spelling (`Player 1` -> `player_1`)."""
    info = getattr(env.state, "game_info", {}) or {}
    name = str(info.get(seat, {}).get("role", f"Player {seat}"))
    return "_".join(name.lower().split())[:40] or f"player_{seat}"


def drain(env, players: int) -> list[tuple[tuple[int, ...], str, str, str, int]]:
    """The messages the environment has queued since the last call, grouped: (recipients,
    speaker, kind, text, speaker id), in the order TextArena queued them."""
    queued = getattr(env.state, "observations", None) or {}
    grouped: OrderedDict[tuple, list[int]] = OrderedDict()
    for pid in range(players):
        for message in queued.get(pid, ()):
            sender, said, kind = message[0], str(message[1]), getattr(message[2], "name", str(message[2]))
            key = (sender, said, kind)
            grouped.setdefault(key, []).append(pid)
        queued[pid] = []
    out = []
    for (sender, said, kind), recipients in grouped.items():
        speaker = f"Player {sender}" if isinstance(sender, int) and sender >= 0 else "Game"
        if len(said) > MAX_MESSAGE_CHARS:
            said = said[:MAX_MESSAGE_CHARS] + " [...]"
        out.append((tuple(sorted(set(recipients))), speaker, kind.lower(), said, sender))
    return out
