"""An LLM (through LiteLLM) judges the seat's chances from the seat's own view, with a disk cache."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import logging
import re
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from maro.agents.llm import CompleteFn
from maro.arena.engine import Game, State
from maro.learner.config import JudgeConfig
from maro.learner.estimators.base import Estimator, GameEstimator

log = logging.getLogger(__name__)

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
        prompt = game.game_text.render_prompt(view, legal)
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
