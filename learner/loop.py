"""`maro selfplay`: play through the arena, update with MARO, publish, repeat; resumable at any point.

One iteration plays `matches_per_iteration` matches with the current adapter against itself,
against past adapters and against scripted bots (seats rotated so every role is played), runs
one MARO update on exactly those matches, publishes the next adapter version and appends one
line to `metrics.jsonl`. `state.json` records, match by match, which plans of the iteration are
played, so a run killed at any point resumes without losing or repeating samples: finished
matches are kept, the update runs once on the iteration's matches (an adapter already
published from them is recognised), and the next iteration starts from the published version.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from rich.console import Console

from maro.arena.engine import game_class, seating
from maro.arena.match.runner import RunnerConfig
from maro.arena.store.matches import MatchStore
from maro.learner.adapters import AdapterRegistry
from maro.learner.config import UpdateConfig
from maro.learner.credit import CreditState, credit
from maro.learner.distributed import RayConfig
from maro.learner.models import resolve_dtype
from maro.learner.rollouts import MatchPlan, play_batch
from maro.learner.runs import METRICS, STATE, atomic_write
from maro.learner.serving.client import ModelServerConfig
from maro.learner.serving.config import PREFIX_CACHE_TOKENS
from maro.learner.session import PlaySession, play_session, progress
from maro.learner.stats import iteration_stats
from maro.learner.update import LearnerConfig, run_update
from maro.learner.variants import recipe

PROBE_SEED = 3_000_000
"""Probe seeds start here: the same deals every iteration, apart from training and `maro eval` seeds."""
_RESUMABLE = {"iterations", "run_dir", "model_server", "concurrency", "turn_timeout_s", "prefix_cache_tokens", "dtype",
              "probe_matches", "transfer_every", "transfer_items", "ray", "arena_host"}
"""Config fields a resumed run may change."""


class OpponentMix(BaseModel):
    """Shares of an iteration's matches by opponent; normalised, split by largest remainder."""

    model_config = ConfigDict(extra="forbid")

    self_play: float = Field(0.5, ge=0)
    """The current adapter in every seat."""
    past: float = Field(0.25, ge=0)
    """Against a past version (the base model included) drawn from the pool."""
    bot: float = Field(0.25, ge=0)
    """Against the game's scripted bot."""

    @model_validator(mode="after")
    def _some(self) -> OpponentMix:
        if self.self_play + self.past + self.bot <= 0:
            raise ValueError("the opponent mix needs at least one positive share")
        return self

    def counts(self, n: int) -> dict[str, int]:
        shares = {"self": self.self_play, "past": self.past, "bot": self.bot}
        total = sum(shares.values())
        exact = {k: n * v / total for k, v in shares.items()}
        counts = {k: int(v) for k, v in exact.items()}
        for k in sorted(exact, key=lambda k: exact[k] - counts[k], reverse=True)[: n - sum(counts.values())]:
            counts[k] += 1
        return counts


def default_learner() -> LearnerConfig:
    """The learner settings `maro selfplay` and `maro demo` start from (docs/results.md): LoRA on the
    top 8 layers (the 22 below are the trunk, run once per sample), a learning rate of 3e-4 (the
    update-settings sweep's choice: 1e-4 barely moved the policy, 1e-3 collapsed it), and a bf16
    update with its old log-probs recomputed where the hardware runs bf16 natively."""
    bf16 = str(resolve_dtype("auto")) == "torch.bfloat16"
    return LearnerConfig(update=UpdateConfig(lora_layers=8, learning_rate=3e-4, bf16=bf16,
                                             old_logprobs="recompute" if bf16 else "recorded"))


class SelfPlayConfig(BaseModel):
    """A self-play training run; stored as run_dir/config.json and checked on resume."""

    model_config = ConfigDict(extra="forbid")

    run_dir: Path = Path("runs/selfplay")
    games: list[str] = Field(default_factory=lambda: ["bargaining-v1"], min_length=1)
    players: dict[str, int] = Field(default_factory=dict)
    """Seats per game; a game not named plays at its smallest size."""
    iterations: int = Field(3, ge=1)
    matches_per_iteration: int = Field(32, ge=1)
    """Matches per iteration over all games (games take turns)."""
    seed: int = 0
    """Training seeds are seed + iteration * matches_per_iteration + i; `maro eval` holds out its own."""
    model: str = "smollm2"
    temperature: float = Field(0.7, gt=0)
    max_tokens: int = Field(24, gt=0)
    concurrency: int = Field(32, ge=1, le=64)
    """Matches in flight at once (the arena's cap on one caller's live matches is 64)."""
    stop_after_action: bool = False
    """End each model reply at its action's closing bracket instead of at max_tokens (AgentContext)."""
    prefix_cache_tokens: int = Field(PREFIX_CACHE_TOKENS, ge=0, le=1_000_000)
    """The local model server's prompt-prefix KV cache (`maro model serve --prefix-cache-tokens`)."""
    dtype: Literal["float32", "bfloat16", "auto"] = "auto"
    """The local model server's weights (`maro model serve --dtype`): `auto` is bfloat16 where the
    hardware runs it natively. Its log-probs are then bf16's: the update recomputes the old ones
    (`update.old_logprobs = recompute`, the default where bf16 is native)."""
    probe_matches: int = Field(0, ge=0, le=1000)
    """After each update, the new adapter (and, before the first, the starting policy) plays this
    many matches against the scripted bot on fixed seeds, its seat alternating; logged as `probe`
    in metrics.jsonl and plotted. 0: no probe."""
    transfer_every: int = Field(0, ge=0, le=1000)
    """Every this many iterations, the new adapter (and, before the first, the starting policy)
    answers `transfer_items` held-out items of each transfer suite greedily (`maro transfer`'s
    instruction following and math); logged as `transfer` in metrics.jsonl and plotted. 0: off."""
    transfer_items: int = Field(50, gt=0, le=2000)
    opponents: OpponentMix = Field(default_factory=OpponentMix)
    pool_size: int = Field(3, ge=1)
    """Past versions the `past` opponents are drawn from: the newest few before the current one."""
    learner: LearnerConfig = Field(default_factory=default_learner)
    model_server: ModelServerConfig | None = None
    """None starts the local model server for the run."""
    ray: RayConfig | None = None
    """Play on Ray's rollout workers and update in a Ray task (`learner.distributed`); None: all in
    this process."""
    arena_host: str = Field("127.0.0.1", max_length=256)
    """Where the run's arena listens. Beyond loopback (rollout workers on other machines) it
    takes a key file in the run folder with one key for the run, which the workers carry."""
    turn_timeout_s: float = Field(600.0, gt=0)
    """The arena's per-attempt deadline: generous, since every seat here is our own model or a bot
    and a busy CPU server can queue a reply for minutes."""

    def num_players(self, game_id: str) -> int:
        return seating(game_id, None, self.players.get(game_id, game_class(game_id).spec.min_players))[1]


def iteration_plans(config: SelfPlayConfig, iteration: int, current: str, past: Sequence[str]) -> list[MatchPlan]:
    """The iteration's matches; `current` and `past` are LiteLLM model strings.

    Deterministic in (config, iteration, current, past). The current adapter's seats rotate with
    the match index (every other seat, shifted by one each match), so over an iteration it plays
    every seat, and with seeded dealing every role.
    """
    n = config.matches_per_iteration
    kinds = [k for k, c in config.opponents.counts(n).items() for _ in range(c)]
    rng = random.Random(config.seed * 1_000_003 + iteration)
    rng.shuffle(kinds)
    plans = []
    for i, kind in enumerate(kinds):
        game_id = config.games[i % len(config.games)]
        players = config.num_players(game_id)
        seed = config.seed + iteration * n + i
        mine = tuple(s for s in range(players) if (s + i) % 2 == 0)
        if kind == "past" and past:
            opponent = rng.choice(list(past))
            seats = tuple(range(players))
            models = tuple(current if s in mine else opponent for s in seats)
            plans.append(MatchPlan(game_id, seed, seats, players, models))
        elif kind == "bot":
            plans.append(MatchPlan(game_id, seed, mine, players, tuple(current for _ in mine)))
        else:  # self-play, and `past` before any past version exists
            seats = tuple(range(players))
            plans.append(MatchPlan(game_id, seed, seats, players, tuple(current for _ in seats)))
    return plans


def plan_kind(plan: MatchPlan, current: str) -> str:
    if len(plan.model_seats) < plan.num_players:
        return "bot"
    return "self" if all(m == current for m in plan.seat_models) else "past"


class RunState(BaseModel):
    """Where a run stands; rewritten atomically after every match and every update."""

    iteration: int = 0
    version: str | None = None
    """The adapter version this iteration plays and trains from (None = base model)."""
    played: dict[int, str] = Field(default_factory=dict)
    """Plan index -> match id of this iteration's matches that ended."""
    baselines: dict[str, float] = Field(default_factory=dict)
    """The `rae` variant's role baselines after the last update."""
    seconds: float = 0.0


class SelfPlayRun:
    """A run folder: config.json, state.json, metrics.jsonl, matches.sqlite, adapters/, plots/."""

    def __init__(self, config: SelfPlayConfig, console: Console | None = None):
        self.config = config
        self.console = console or Console()
        self.dir = config.run_dir.resolve()
        self.dir.mkdir(parents=True, exist_ok=True)
        self._check_config()
        self.adapters = AdapterRegistry(self.dir / "adapters")
        self.store = MatchStore(self.dir / "matches.sqlite")
        self.state = self._load_state()
        self._ray = None

    def _check_config(self) -> None:
        path = self.dir / "config.json"
        if path.exists():
            stored = SelfPlayConfig.model_validate_json(path.read_text())
            same = stored.model_dump(exclude=_RESUMABLE)
            if same != self.config.model_dump(exclude=_RESUMABLE):
                raise ValueError(f"{path} holds a different run's config; resume with the same settings "
                                 "(only --iterations may grow) or use another run folder")
        atomic_write(path, self.config.model_dump_json(indent=2))

    def _load_state(self) -> RunState:
        path = self.dir / STATE
        if not path.exists():  # a new run: from the base model, or from a warm start published here
            return RunState(version=self.adapters.latest())
        try:
            return RunState.model_validate_json(path.read_text())
        except ValueError as exc:
            raise ValueError(f"{path} is not a valid run state ({exc}); it is rewritten after every match, "
                             "so a damaged one means the folder was edited by hand") from exc

    def _save(self) -> None:
        atomic_write(self.dir / STATE, self.state.model_dump_json(indent=2))

    def model_string(self, server: ModelServerConfig, version: str | None) -> str:
        return server.litellm_model(version or "base")

    def past_pool(self, server: ModelServerConfig) -> list[str]:
        versions = self.adapters.versions()
        current = self.state.version
        older = [v for v in versions if current and int(v[1:]) < int(current[1:])]
        pool = ([None] if current else []) + older
        return [self.model_string(server, v) for v in pool[-self.config.pool_size:]]

    async def run(self) -> list[dict[str, Any]]:
        """Play and update until `iterations` are done; returns the metrics lines written now."""
        from maro.learner.localmodel import resolve_model

        config = self.config
        with self.console.status(f"preparing model {config.model}"):
            model_dir = resolve_model(config.model)
        runner = RunnerConfig(turn_timeout_s=config.turn_timeout_s)
        written = []
        async with play_session(self.dir, model_dir, self.store, self.adapters.root, model_server=config.model_server,
                                runner=runner, prefix_cache_tokens=config.prefix_cache_tokens, dtype=config.dtype,
                                console=self.console, host=config.arena_host) as session:
            try:
                if config.ray is not None:
                    from maro.learner.distributed import RayRollouts

                    with self.console.status(f"starting {config.ray.workers} rollout workers on Ray"):
                        self._ray = RayRollouts(config.ray, session.arena.advertised, session.key,
                                                name=f"maro-{os.getpid()}")
                while self.state.iteration < config.iterations:
                    written.append(await self._iteration(session, model_dir))
            finally:
                if self._ray is not None:
                    self._ray.close()
                    self._ray = None
        from maro.learner.plots import plot_run

        plot_run(self.dir)
        return written

    async def _iteration(self, session: PlaySession, model_dir: Path) -> dict[str, Any]:
        """One iteration: play its matches, update on them, publish, probe, record."""
        state, started = self.state, time.time()
        current = self.model_string(session.server, state.version)
        plans = iteration_plans(self.config, state.iteration, current, self.past_pool(session.server))
        serving = await self._play(session, plans, current)
        play_seconds = time.time() - started
        match_ids = [state.played[i] for i in range(len(plans))]
        version, update, baselines = await self._update(model_dir, match_ids)
        served = None
        if version is not None:
            served = await asyncio.to_thread(session.server.publish_adapter, version, self.adapters.path(version))
            for replica in self.config.ray.model_servers if self.config.ray is not None else ():
                await asyncio.to_thread(replica.publish_adapter, version, self.adapters.path(version))
        probes = {}
        if self.config.probe_matches:
            if state.iteration == 0:
                probes["probe_start"] = await self._probe(session, state.version)
            probes["probe"] = await self._probe(session, version)
        if self.config.transfer_every:
            if state.iteration == 0:  # the starting policy: the base, or a warm start
                probes["transfer_start"] = await self._transfer(session, state.version)
            if (state.iteration + 1) % self.config.transfer_every == 0:
                probes["transfer"] = await self._transfer(session, version)
        kinds = defaultdict(int)
        for p in plans:
            kinds[plan_kind(p, current)] += 1
        line = {
            "iteration": state.iteration + 1, "trained_from": state.version or "base", "version": version,
            "served": served, "opponents": dict(kinds), **iteration_stats(self.store, match_ids, current),
            "update": update, **probes, "play_seconds": play_seconds, "seconds": time.time() - started,
            "serving": serving,
        }
        self._record(line, baselines)
        return line

    def _label(self) -> str:
        return f"iteration {self.state.iteration + 1}/{self.config.iterations} ({self.state.version or 'base'})"

    async def _play(self, session: PlaySession, plans: list[MatchPlan], current: str) -> dict[str, float]:
        """Play the iteration's matches not played yet (a resumed run keeps the others); returns
        what the model server did meanwhile."""
        config, state = self.config, self.state
        todo = [(i, p) for i, p in enumerate(plans) if i not in state.played]

        def done(index: int, match_id: str) -> None:
            state.played[todo[index][0]] = match_id
            self._save()

        before = await asyncio.to_thread(session.server.stats)
        if todo:
            settings = session.settings(config.temperature, config.max_tokens, model=current)
            label = self._label()
            with progress(label, self.console) as bar:
                task = bar.add_task(label, total=len(plans), completed=len(plans) - len(todo))
                if self._ray is not None:
                    def recorded(index: int, match_id: str) -> None:  # a plan's own index, in any order
                        state.played[index] = match_id
                        self._save()
                        bar.advance(task)

                    await self._ray.play_in(session, todo, settings, recorded, config.stop_after_action)
                else:
                    await play_batch(session.address, [p for _, p in todo], settings, concurrency=config.concurrency,
                                     on_done=lambda _m: bar.advance(task), on_result=done,
                                     stop_after_action=config.stop_after_action, key=session.key)
        return _serving_delta(before, await asyncio.to_thread(session.server.stats))

    async def _update(self, model_dir: Path, match_ids: list[str]) -> tuple[str | None, dict, dict[str, float]]:
        """The MARO update on exactly these matches: (the version now, its metrics, the role
        baselines after it). A run killed after publishing recovers the update it had made."""
        state = self.state
        version = self._published_from(match_ids)
        if version is not None:
            return version, self.adapters.metadata(version).get("metrics", {}), self._replay_baselines(match_ids)
        learner = _tempered(self.config.learner, self.config.temperature)
        try:
            with self.console.status(f"MARO update ({learner.maro.variant}) on {len(match_ids)} matches"):
                if self.config.ray is not None:
                    from maro.learner.distributed import remote_update

                    return await remote_update(self.config.ray, self.store.url, self.adapters.root, model_dir,
                                               match_ids, learner, state.baselines)
                result = await asyncio.to_thread(run_update, self.store, self.adapters, model_dir, match_ids,
                                                 learner, CreditState(state.baselines))
        except ValueError as exc:  # nothing learnable (say, every branch group tied): keep the policy
            self.console.print(f"[yellow]iteration {state.iteration + 1}: no update ({exc})")
            return state.version, {"skipped": str(exc)}, dict(state.baselines)
        return result.version, result.metrics, dict(result.state.baselines if result.state else state.baselines)

    def _record(self, line: dict[str, Any], baselines: dict[str, float]) -> None:
        """Append the metrics line, move the run state on, redraw the plots."""
        with open(self.dir / METRICS, "a") as f:
            f.write(json.dumps(line, default=str) + "\n")
        update = line["update"] or {}
        self.console.print(f"{self._label()}: valid {line['valid_rate']:.1%}, now {line['version'] or 'base'} "
                           f"(loss {update.get('maro/loss', float('nan')):.4f}) in {line['seconds']:.0f}s")
        self.state = RunState(iteration=self.state.iteration + 1, version=line["version"], baselines=baselines,
                              seconds=self.state.seconds + line["seconds"])
        self._save()
        from maro.learner.plots import plot_run

        plot_run(self.dir)

    async def _probe(self, session: PlaySession, version: str | None) -> dict[str, Any]:
        """`version` against the scripted bot on the probe seeds: its valid rate and mean outcome."""
        config = self.config
        current = self.model_string(session.server, version)
        plans = []
        for k in range(config.probe_matches):
            game_id = config.games[k % len(config.games)]
            players = config.num_players(game_id)
            plans.append(MatchPlan(game_id, PROBE_SEED + k, (k % players,), players))
        settings = session.settings(config.temperature, config.max_tokens, model=current)
        with self.console.status(f"probe: {version or 'base'} against the bot on {len(plans)} fixed seeds"):
            ids = await play_batch(session.address, plans, settings, concurrency=config.concurrency,
                                   stop_after_action=config.stop_after_action, key=session.key)
        stats = iteration_stats(self.store, ids, current)
        return {"version": version or "base", "matches": stats["matches"], "valid_rate": stats["valid_rate"],
                "mean_outcome": stats["mean_outcome"], "outcome": stats["outcome"]}

    async def _transfer(self, session: PlaySession, version: str | None) -> dict[str, Any]:
        """`version`'s greedy accuracy on the transfer suites' probe items (the same every time)."""
        from maro.learner.transfer.run import probe_accuracy

        model = self.model_string(session.server, version)
        with self.console.status(f"transfer probe: {version or 'base'} on {self.config.transfer_items} items a suite"):
            result = await probe_accuracy(model, session.server.api_base(), session.server.api_key,
                                          n=self.config.transfer_items, concurrency=self.config.concurrency)
        return {"version": version or "base", **result}

    def _published_from(self, match_ids: Sequence[str]) -> str | None:
        """The version already trained on exactly these matches, if a killed run published it."""
        wanted = set(match_ids)
        for name in reversed(self.adapters.versions()):
            if set(self.adapters.metadata(name).get("data", {}).get("match_ids", [])) == wanted:
                return name
        return None

    def _replay_baselines(self, match_ids: Sequence[str]) -> dict[str, float]:
        """The `rae` baselines after crediting these matches once more (cheap: no estimator)."""
        if not recipe(self.config.learner.maro.variant).keeps_baselines:
            return dict(self.state.baselines)
        matches = [m for m in (self.store.get_match(i, with_events=False) for i in match_ids) if m is not None]
        replayed = credit(matches, self.store.behaviors(list(match_ids)), self.config.learner.maro,
                          CreditState(self.state.baselines))
        return replayed.state.baselines


def _serving_delta(before: dict | None, after: dict | None) -> dict[str, float]:
    """What the model server did during a play phase: requests, prefill and decode work and seconds."""
    if not before or not after:
        return {}
    keys = ("requests", "rows", "steps", "prefill_tokens", "prefill_s", "decode_rows", "decode_s", "prefix_hits",
            "prefix_reused_tokens")
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in keys}
    delta["mean_batch_rows"] = delta["decode_rows"] / delta["steps"] if delta["steps"] else 0.0
    delta["max_batch_rows"] = after.get("max_batch_rows", 0)
    return delta


def _tempered(learner: LearnerConfig, temperature: float) -> LearnerConfig:
    """The learner's policy is the tempered one the agents sampled from (UpdateConfig.temperature);
    so the base model's play-time log-probs are the KL reference's, unless the config says otherwise."""
    update: dict[str, Any] = {"temperature": temperature}
    if learner.update.base_logprobs_as_reference is None:
        update["base_logprobs_as_reference"] = True
    return learner.model_copy(update={"update": learner.update.model_copy(update=update)})
