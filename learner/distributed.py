"""Self-play on Ray (`maro selfplay --ray auto|local|ADDRESS`): rollout workers are Ray actors that
each play many matches at once (LangGraph agents through LiteLLM against the run's arena), and
the MARO update runs as a Ray task, on a GPU node when the cluster has one.

The driver keeps what makes a run resumable: the arena (and its match store), the run state, the
adapter registry and publishing. It creates every match itself and hands its seats to a worker;
a worker that dies costs only the matches it had in flight: the driver aborts them in the arena
(so they are never trained on) and plays their plans again, with new matches, on the workers
left, starting a replacement worker. A match counts as played only once its worker returned it,
so none is trained on twice or lost.

Several machines: `ray start --head` on one, `ray start --address HEAD:6379` on the others, then
`maro selfplay --ray auto --arena-host 0.0.0.0 --model-server URL ...` on the head. The run folder
must be on a file system every node mounts at the same path (the update task reads the match
store and writes the adapter there). Workers reach the arena at the head's address with a key
the driver makes for the run; model replies come from `--model-server` (vLLM, say), which every
node must reach, and from any `RayConfig.model_servers` replicas, each published to after every
update.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from maro.learner.serving.client import ModelServerConfig

log = logging.getLogger(__name__)


class RayConfig(BaseModel):
    """Where and how wide self-play runs on Ray."""

    model_config = ConfigDict(extra="forbid")

    address: str = Field("auto", max_length=256)
    """`auto`: the cluster `ray start` runs on this machine; `local`: start one inside this process
    (`num_cpus` of them); otherwise a cluster address (`HOST:6379`, `ray://HOST:10001`)."""
    workers: int = Field(2, ge=1, le=256)
    """Rollout workers (Ray actors), spread over the cluster."""
    matches_per_worker: int = Field(8, ge=1, le=64)
    """Matches each worker plays at once."""
    num_cpus: int | None = Field(None, ge=1, le=4096)
    """CPUs of a `local` cluster (default: this machine's)."""
    max_worker_restarts: int = Field(8, ge=0, le=1000)
    """Workers started in place of ones that died, per run; past it the run stops with the reason."""
    learner_gpus: float | None = Field(None, ge=0, le=64)
    """GPUs the update task asks for; None: 1 when the cluster has one, else none (CPU)."""
    model_servers: list[ModelServerConfig] = Field(default_factory=list, max_length=64)
    """More serving replicas beside the run's model server: workers are spread over all of them,
    and every new adapter is published to each before the next iteration starts."""


def start_ray(config: RayConfig) -> None:
    """Connect to the cluster (or start the local one) unless this process already has."""
    import ray

    if ray.is_initialized():
        return
    env = {k: v for k, v in os.environ.items() if k in _PASSED_ENV}
    if config.address == "local":
        ray.init(num_cpus=config.num_cpus, include_dashboard=False, runtime_env={"env_vars": env},
                 log_to_driver=False, configure_logging=False)
    else:
        ray.init(address=config.address, runtime_env={"env_vars": env}, log_to_driver=False,
                 configure_logging=False)


_PASSED_ENV = ("HF_HUB_OFFLINE", "LITELLM_LOCAL_MODEL_COST_MAP", "TRL_EXPERIMENTAL_SILENCE", "GRPC_VERBOSITY",
               "HF_HOME", "MARO_HOME")
"""The environment the workers need from the driver's (offline model hub, LiteLLM's cost map)."""


class RolloutWorker:
    """A Ray actor (made one in `RayRollouts`): plays the model seats of matches the driver
    created, many at once, over one channel to the arena."""

    def __init__(self, arena: str, key: str | None = None):
        self.arena, self.key = arena, key
        self.channel = None

    async def play(self, plan: dict, match_id: str, tokens: dict[int, str], settings: dict,
                   stop_after_action: bool) -> str:
        from maro.agents.client import open_channel
        from maro.agents.llm import ModelSettings
        from maro.learner.rollouts import MatchPlan, play_planned

        if self.channel is None:
            self.channel = open_channel(self.arena, key=self.key)
        plan = MatchPlan(**{**plan, "model_seats": tuple(plan["model_seats"]),
                            "seat_models": tuple(plan["seat_models"])})
        await play_planned(self.channel, plan, match_id, {int(k): v for k, v in tokens.items()},
                           ModelSettings.model_validate(settings), stop_after_action)
        return match_id

    def where(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "host": socket.gethostname()}


class RayRollouts:
    """The driver's side: a pool of rollout workers and the plans they play."""

    def __init__(self, config: RayConfig, arena: str, key: str | None = None, name: str = "maro"):
        import ray

        start_ray(config)
        self.config, self.arena, self.key = config, arena, key
        self.name = name
        self._actor_class = ray.remote(max_concurrency=config.matches_per_worker, max_restarts=0)(RolloutWorker)
        self.workers: dict[int, Any] = {}
        self._next = 0
        self.restarts = 0
        for _ in range(config.workers):
            self._start_worker()

    def _start_worker(self) -> int:
        k, self._next = self._next, self._next + 1
        self.workers[k] = self._actor_class.options(name=f"{self.name}-rollout-{k}", num_cpus=0.5).remote(
            self.arena, self.key)
        return k

    async def play(self, plans: Sequence[tuple[int, Any]], settings: Sequence[Any],
                   create: Callable[[Any, Any], Any], abort: Callable[[str, str], Any],
                   on_result: Callable[[int, str], None], stop_after_action: bool = False) -> None:
        """Play `plans` ((plan index, MatchPlan) pairs): `create(plan, settings)` makes a match in
        the arena (its id and seat tokens), a worker plays it, `on_result(index, match_id)`
        records it. Worker k uses `settings[k % len(settings)]` (one per serving replica). A
        worker that dies has its matches aborted (`abort(match_id, reason)`) and their plans
        played again elsewhere."""
        from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

        lost = (RayActorError, ActorDiedError, ActorUnavailableError)
        queue = deque(plans)
        flying: dict[asyncio.Future, tuple[int, Any, str, int]] = {}
        load = dict.fromkeys(self.workers, 0)
        while queue or flying:
            for k in list(self.workers):
                while queue and load.get(k, 0) < self.config.matches_per_worker:
                    index, plan = queue.popleft()
                    chosen = settings[k % len(settings)]
                    match_id, tokens = await create(plan, chosen)
                    ref = self.workers[k].play.remote(asdict(plan), match_id, tokens, chosen.model_dump(mode="json"),
                                                      stop_after_action)
                    flying[asyncio.wrap_future(ref.future())] = (index, plan, match_id, k)
                    load[k] = load.get(k, 0) + 1
            if not flying:
                raise RuntimeError("no rollout worker is left to play on")
            done, _ = await asyncio.wait(flying, return_when=asyncio.FIRST_COMPLETED)
            for future in done:
                index, plan, match_id, k = flying.pop(future)
                load[k] = load.get(k, 0) - 1
                try:
                    on_result(index, future.result())
                except lost as exc:
                    await abort(match_id, "its rollout worker died")
                    queue.append((index, plan))
                    self._lost(k, exc)
                    load.pop(k, None)

    async def play_in(self, session: Any, plans: Sequence[tuple[int, Any]], settings: Any,
                      on_result: Callable[[int, str], None], stop_after_action: bool = False) -> None:
        """`play` in a self-play session's arena (`learner.session.PlaySession`): the matches are
        created there, and aborted there when a worker dies. `settings` are the session's; each
        extra serving replica gets a copy that differs only in where its calls go."""
        from maro.agents.client import open_channel
        from maro.learner.rollouts import create_planned

        every = [settings] + [settings.model_copy(update={"api_base": s.api_base(), "api_key": s.api_key})
                              for s in self.config.model_servers]
        async with open_channel(session.address, key=session.key) as channel:
            await self.play(plans, every, lambda plan, chosen: create_planned(channel, plan, chosen),
                            session.arena.service.abort, on_result, stop_after_action)

    def _lost(self, k: int, exc: BaseException) -> None:
        if self.workers.pop(k, None) is None:  # its other matches already reported it
            return
        log.warning("rollout worker %d died (%s); its matches are played again elsewhere", k, type(exc).__name__)
        if self.restarts >= self.config.max_worker_restarts:
            if not self.workers:
                raise RuntimeError(f"every rollout worker died and {self.restarts} were restarted already "
                                   f"(RayConfig.max_worker_restarts); last: {exc}")
            return
        self.restarts += 1
        self._start_worker()

    def close(self) -> None:
        import ray

        for worker in self.workers.values():
            ray.kill(worker)
        self.workers.clear()


def learner_gpus(config: RayConfig) -> float:
    import ray

    if config.learner_gpus is not None:
        return config.learner_gpus
    return 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0


async def remote_update(config: RayConfig, store_url: str, adapters_root: Path, model_dir: Path,
                        match_ids: Sequence[str], learner: Any, baselines: dict[str, float]):
    """`run_update` as a Ray task (on a GPU when there is one, in bf16 there); returns
    (version, metrics, baselines after it)."""
    import ray

    gpus = learner_gpus(config)
    task = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=0)(_update_task)
    ref = task.remote(store_url, str(adapters_root), str(model_dir), list(match_ids),
                      learner.model_dump(mode="json"), dict(baselines))
    return await asyncio.wrap_future(ref.future())


def _update_task(store_url: str, adapters_root: str, model_dir: str, match_ids: list[str], learner: dict,
                 baselines: dict[str, float]):
    from maro.arena.store.matches import MatchStore
    from maro.learner.adapters import AdapterRegistry
    from maro.learner.credit import CreditState
    from maro.learner.update import LearnerConfig, gpu_settings, run_update

    config = gpu_settings(LearnerConfig.model_validate(learner))
    store = MatchStore(store_url)
    try:
        result = run_update(store, AdapterRegistry(Path(adapters_root)), Path(model_dir), match_ids, config,
                            CreditState(baselines))
    finally:
        store.close()
    return result.version, result.metrics, dict(result.state.baselines if result.state else baselines)
