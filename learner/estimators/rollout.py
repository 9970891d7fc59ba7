"""Monte-Carlo continuations from the snapshot against an opponent pool (bots, random, the model)."""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Sequence

from maro.arena.engine import Game, GameError, State
from maro.learner.config import RolloutConfig
from maro.learner.estimators.base import Estimator, Policy

log = logging.getLogger(__name__)

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
        return float(game.value(state, seat)) if game.has_heuristic() else 0.0  # no heuristic: neutral

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
