"""Value estimators V_i(s) in [-1, 1] from a snapshot: the game's heuristic, rollouts, an LLM judge, a mix."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import logging
import random
import re
import sqlite3
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path


from maro.agents.llm import CompleteFn
from maro.arena.engine import Game, GameError, State
from maro.learner import maro

from maro.learner.config import JudgeConfig, MaroConfig, RolloutConfig

log = logging.getLogger(__name__)

Policy = Callable[[Game, State, int, random.Random], str]
"""A rollout policy: (game, state, acting seat, rng) -> action text. Built-ins read only the seat's
observation; the rng is the rollout's own, so seeded policies make rollouts reproducible."""

def _clip(v: float) -> float:
    return max(-1.0, min(1.0, float(v)))


class Estimator(ABC):
    """`value(snapshot, seat)` in [-1, 1], cached by (snapshot, seat); `values` evaluates many at once."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int], float] = {}
        self.stats: Counter[str] = Counter()

    def value(self, snapshot: str, seat: int) -> float:
        return self.values([(snapshot, seat)])[0]

    def values(self, queries: Sequence[tuple[str, int]]) -> list[float]:
        missing = list(dict.fromkeys(q for q in queries if q not in self._cache))
        if missing:
            for q, v in zip(missing, self._compute_many(missing), strict=True):
                self._cache[q] = _clip(v)
        return [self._cache[q] for q in queries]

    def _compute_many(self, queries: list[tuple[str, int]]) -> list[float]:
        return [self._compute(snapshot, seat) for snapshot, seat in queries]

    @abstractmethod
    def _compute(self, snapshot: str, seat: int) -> float: ...


class GameEstimator(Estimator):
    """V_i(s) from the game's own heuristic on a restored snapshot (cheap, deterministic)."""

    def __init__(self, game: Game):
        super().__init__()
        self.game = game

    def _compute(self, snapshot: str, seat: int) -> float:
        return float(self.game.value(self.game.restore(snapshot), seat))


# --- rollout ---------------------------------------------------------------------------------------

def random_policy(game: Game, state: State, seat: int, rng: random.Random) -> str:
    return game.random_action(state, seat, rng)


def bot_policy(name: str) -> Policy:
    """A scripted bot as a rollout policy: it sees the seat's observation only, like in the arena."""
    from maro.agents.bots import get_bot

    bot = get_bot(name)

    def act(game: Game, state: State, seat: int, rng: random.Random) -> str:
        obs = game.observe(state, seat)
        return bot.act(obs.view, obs.legal_actions, rng)

    return act


def make_pool(names: Sequence[str], game: Game, model_policy: Policy | None = None) -> list[Policy]:
    """Policies by name; `bot` falls back to random play for a game without scripted bots."""
    from maro.agents.bots import bot_names, default_bot

    pool: list[Policy] = []
    for name in names:
        if name == "random":
            pool.append(random_policy)
        elif name == "bot":
            pool.append(bot_policy(default_bot(game.spec.id)) if bot_names(game.spec.id) else random_policy)
        elif name.startswith("bot:"):
            pool.append(bot_policy(name.removeprefix("bot:")))
        elif name == "model":
            if model_policy is None:
                raise ValueError("rollout pool names `model` but no model policy was given to make_estimator")
            pool.append(model_policy)
        else:
            raise ValueError(f"unknown rollout policy {name!r}; use bot, bot:<name>, random or model")
    return pool


def _seed(*parts: object) -> int:
    """A stable seed from its parts (Python's hash() of str is salted per process)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big")


class RolloutEstimator(Estimator):
    """V_i(s) = mean over K continuations of seat i's final outcome, every seat's policy drawn
    from the pool per continuation. Deterministic for a given (snapshot, seat, config.seed) as
    long as the pool's policies are (the built-ins are). Continuations start from the true
    snapshot, so the critic sees hidden facts the player does not: it is a training-time baseline,
    never shown to a player."""

    def __init__(self, game: Game, config: RolloutConfig, model_policy: Policy | None = None):
        super().__init__()
        self.game, self.config = game, config
        self.pool = make_pool(config.pool, game, model_policy)

    def _compute(self, snapshot: str, seat: int) -> float:
        start = self.game.restore(snapshot)
        if start.finished:
            return start.outcome[seat]
        outcomes = [self._rollout(start, seat, random.Random(_seed(self.config.seed, seat, k, snapshot)))
                    for k in range(self.config.samples)]
        return sum(outcomes) / len(outcomes)

    def _rollout(self, state: State, seat: int, rng: random.Random) -> float:
        game = self.game
        policies = [rng.choice(self.pool) for _ in range(game.num_players())]
        self.stats["rollout/continuations"] += 1
        for _ in range(self.config.max_steps):
            if state.finished:
                return state.outcome[seat]
            # Every acting seat submits, then one step: simultaneous phases resolve as in the arena.
            texts = {s: self._act(policies[s], state, s, rng) for s in sorted(game.acting(state))}
            state, _ = game.step(state, texts)
            self.stats["rollout/steps"] += 1
        if state.finished:
            return state.outcome[seat]
        self.stats["rollout/truncated"] += 1
        return float(game.value(state, seat))

    def _act(self, policy: Policy, state: State, seat: int, rng: random.Random) -> str:
        """The policy's action, or a uniform legal one when it errs or answers illegally (counted)."""
        try:
            text = policy(self.game, state, seat, rng)
            self.game.validate(state, seat, text)
            return text
        except Exception as exc:  # a model policy may fail in any way; the rollout goes on
            if not isinstance(exc, GameError):
                log.debug("rollout policy failed: %s", exc)
            self.stats["rollout/invalid_actions"] += 1
            return self.game.random_action(state, seat, rng)


# --- judge -----------------------------------------------------------------------------------------

JUDGE_SYSTEM = (
    "You judge social games. You are shown what one player knows: the rules, its goal and the "
    "situation from its own side. Estimate the probability that this player reaches its goal "
    "(wins, or gets the better of the deal) by the end of the match. "
    "Answer with one line and nothing else: PROBABILITY: p, with p a number between 0 and 1."
)

_KEYED = re.compile(r"probab\w*\s*(?:of\s+success\s*)?(?:is\s*)?[:=]?\s*(\d+(?:\.\d+)?|\.\d+)\s*(%?)", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?|\.\d+)\s*(%?)")


def parse_probability(text: str) -> float | None:
    """The probability in a judge's answer, or None when there is no usable one.

    Prefers the number after `probability`, else the last number in the text; `N%` is N/100.
    A bare number outside [0, 1] is not a probability (None), never rescaled by guess.
    """
    matches = list(_KEYED.finditer(text or "")) or list(_NUMBER.finditer(text or ""))
    if not matches:
        return None
    number, percent = matches[-1].group(1), matches[-1].group(2)
    p = float(number) / (100.0 if percent else 1.0)
    return p if 0.0 <= p <= 1.0 else None


def judge_messages(game: Game, state: State, seat: int) -> list[dict]:
    """The judge's prompt, built from `game.view(state, seat)` only: the seat's own facts and the
    public record, never another seat's hidden facts (the engine's observation contract)."""
    view = game.view(state, seat)
    legal = game.legal_actions(state, seat) if seat in game.acting(state) and not state.finished else ()
    parts = [f"Game: {game.spec.description}",
             f"Player: seat {seat}, role as it knows it: {view.get('role', 'unknown')}"]
    try:
        prompt = game.render_prompt(view, legal)
        parts += [f"The player's rules and goal:\n{prompt[0]['content']}",
                  f"The situation as the player sees it:\n{prompt[-1]['content']}"]
    except Exception:  # some views (a finished match) may not render; the data below still holds it all
        pass
    parts.append("Everything the player knows, as data:\n" + json.dumps(view, sort_keys=True, default=str))
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": "\n\n".join(parts)}]


def run_sync(make_coro: Callable[[], object]):
    """Run a coroutine to completion from sync code: here if no loop runs in this thread, else in a
    fresh thread (credit() runs in a worker thread, but may be called from async code too)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make_coro())
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make_coro())).result()


class _DiskCache:
    """Valid judge answers by content hash in one SQLite table."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(self.path) as db:
            db.execute("CREATE TABLE IF NOT EXISTS judge (key TEXT PRIMARY KEY, probability REAL, answer TEXT)")

    def get(self, keys: Sequence[str]) -> dict[str, float]:
        found: dict[str, float] = {}
        with sqlite3.connect(self.path) as db:
            for key in keys:
                row = db.execute("SELECT probability FROM judge WHERE key = ?", (key,)).fetchone()
                if row is not None:
                    found[key] = float(row[0])
        return found

    def put(self, rows: Sequence[tuple[str, float, str]]) -> None:
        if rows:
            with sqlite3.connect(self.path) as db:
                db.executemany("INSERT OR REPLACE INTO judge VALUES (?, ?, ?)", rows)


class JudgeEstimator(Estimator):
    """V_i(s) = 2p - 1 with p the judge's probability that seat i reaches its goal.

    Cached by a hash of (model, prompt): in memory and, with `cache_path`, on disk. A terminal
    state needs no judge: its value is the outcome. `complete` is the LiteLLM call (tests pass one
    with `mock_response`).
    """

    def __init__(self, game: Game, config: JudgeConfig, complete: CompleteFn | None = None):
        super().__init__()
        from maro.agents.llm import complete as llm_complete

        self.game, self.config = game, config
        self.complete = complete or llm_complete
        self.disk = _DiskCache(config.cache_path) if config.cache_path else None
        self._answers: dict[str, float] = {}  # content hash -> value
        self._fallback = GameEstimator(game) if config.fallback == "game" else None

    def _compute(self, snapshot: str, seat: int) -> float:
        return self._compute_many([(snapshot, seat)])[0]

    def _compute_many(self, queries: list[tuple[str, int]]) -> list[float]:
        results: list[float | None] = [None] * len(queries)
        asks: dict[str, list[dict]] = {}
        keys: list[str | None] = []
        for i, (snapshot, seat) in enumerate(queries):
            state = self.game.restore(snapshot)
            if state.finished:
                results[i] = state.outcome[seat]
                keys.append(None)
                continue
            messages = judge_messages(self.game, state, seat)
            key = hashlib.sha256(json.dumps([self.config.model.model, messages]).encode()).hexdigest()
            keys.append(key)
            if key not in self._answers:
                asks[key] = messages
        if asks and self.disk is not None:
            hits = self.disk.get(list(asks))
            self.stats["judge/disk_hits"] += len(hits)
            self._answers.update(hits)
            asks = {k: m for k, m in asks.items() if k not in hits}
        if asks:
            self._ask(asks)
        for i, key in enumerate(keys):
            if key is not None:
                results[i] = self._answers[key] if key in self._answers else self._fallback_value(*queries[i])
        return results  # type: ignore[return-value]

    def _ask(self, asks: Mapping[str, list[dict]]) -> None:
        """Ask the judge about every prompt concurrently; keep the usable answers."""
        async def one(sem: asyncio.Semaphore, messages: list[dict]) -> str | BaseException:
            async with sem:
                try:
                    return (await self.complete(messages, self.config.model)).text
                except Exception as exc:  # noqa: BLE001 (one failed call falls back, the rest go on)
                    return exc

        async def all_() -> list[str | BaseException]:
            sem = asyncio.Semaphore(self.config.concurrency)
            return await asyncio.gather(*(one(sem, m) for m in asks.values()))

        answers = run_sync(all_)
        fresh = []
        for key, answer in zip(asks, answers, strict=True):
            self.stats["judge/calls"] += 1
            if isinstance(answer, BaseException):
                self.stats["judge/errors"] += 1
                log.warning("judge call failed: %s", answer)
                continue
            p = parse_probability(answer)
            if p is None:
                self.stats["judge/bad_answers"] += 1
                log.info("judge answer without a probability: %r", answer[:120])
                continue
            self._answers[key] = 2.0 * p - 1.0
            fresh.append((key, self._answers[key], answer))
        if self.disk is not None:
            self.disk.put(fresh)

    def _fallback_value(self, snapshot: str, seat: int) -> float:
        self.stats["judge/fallbacks"] += 1
        return self._fallback.value(snapshot, seat) if self._fallback is not None else 0.0


# --- mix and construction --------------------------------------------------------------------------

class MixEstimator(Estimator):
    """V = sum_j w_j V_j / sum_j w_j over the component estimators (maro.mix_values)."""

    def __init__(self, parts: Mapping[str, Estimator], weights: Mapping[str, float]):
        super().__init__()
        self.parts, self.weights = dict(parts), [weights[name] for name in parts]

    def _compute(self, snapshot: str, seat: int) -> float:
        return self._compute_many([(snapshot, seat)])[0]

    def _compute_many(self, queries: list[tuple[str, int]]) -> list[float]:
        columns = [part.values(queries) for part in self.parts.values()]
        return [maro.mix_values([c[i] for c in columns], self.weights) for i in range(len(queries))]

    @property
    def all_stats(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for part in self.parts.values():
            total.update(part.stats)
        return total


EstimatorFactory = Callable[[Game], Estimator]


def make_estimator(config: MaroConfig, game: Game, *, model_policy: Policy | None = None,
                   complete: CompleteFn | None = None) -> Estimator:
    """The estimator `config.estimator` names, for one game (and its params)."""

    def one(name: str) -> Estimator:
        if name == "game":
            return GameEstimator(game)
        if name == "rollout":
            return RolloutEstimator(game, config.rollout, model_policy)
        if name == "judge":
            return JudgeEstimator(game, config.judge, complete)
        raise ValueError(f"unknown estimator {name!r}")

    if config.estimator == "mix":
        weights = {name: w for name, w in config.mix.weights.items() if w > 0}
        return MixEstimator({name: one(name) for name in weights}, weights)
    return one(config.estimator)


def estimator_stats(estimator: Estimator) -> dict[str, float]:
    """The estimator's counters (a mix: its parts'), under `estimator/...` names."""
    stats = estimator.all_stats if isinstance(estimator, MixEstimator) else estimator.stats
    return {f"estimator/{k}": float(v) for k, v in stats.items()}
