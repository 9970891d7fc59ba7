"""Self-play on a local Ray cluster the test starts (loopback, 2 CPUs): two rollout workers and the
update as a Ray task, and a worker killed mid-iteration costing only its unfinished matches."""

import asyncio
import os

import pytest

from maro.learner.config import UpdateConfig
from maro.learner.distributed import RayConfig
from maro.learner.loop import SelfPlayConfig, SelfPlayRun
from maro.learner.update import LearnerConfig

ray = pytest.importorskip("ray")

FAST = LearnerConfig(update=UpdateConfig(batch_size=4, max_prompt_tokens=256, max_completion_tokens=8))


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False,
             configure_logging=False, runtime_env={"env_vars": {
                 k: os.environ[k] for k in ("HF_HUB_OFFLINE", "LITELLM_LOCAL_MODEL_COST_MAP") if k in os.environ}})
    yield
    ray.shutdown()


def config(tmp_path, model_dir, matches, per_worker):
    return SelfPlayConfig(run_dir=tmp_path / "run", games=["bargaining-v1"], iterations=1,
                          matches_per_iteration=matches, model=str(model_dir), max_tokens=8, learner=FAST,
                          ray=RayConfig(address="auto", workers=2, matches_per_worker=per_worker))


def finished(run) -> list[str]:
    return [m.match_id for m in run.store.list_matches(status="finished")]


async def test_selfplay_on_two_ray_workers_plays_updates_and_publishes(cluster, tmp_path, tiny_model_dir):
    run = SelfPlayRun(config(tmp_path, tiny_model_dir, matches=4, per_worker=2))
    (line,) = await run.run()
    assert line["version"] == "v0001" and line["served"] and run.state.iteration == 1 and line["matches"] == 4
    trained = run.adapters.metadata("v0001")["data"]["match_ids"]
    assert sorted(trained) == sorted(finished(run)) and len(set(trained)) == 4
    assert ray.util.list_named_actors() == []  # the run's workers are gone with it


async def test_a_worker_killed_mid_iteration_costs_only_its_unfinished_matches(cluster, tmp_path, tiny_model_dir):
    run = SelfPlayRun(config(tmp_path, tiny_model_dir, matches=6, per_worker=1))
    task = asyncio.create_task(run.run())
    while len(run.state.played) < 1:
        assert not task.done(), task
        await asyncio.sleep(0.05)
    ray.kill(ray.get_actor(f"maro-{os.getpid()}-rollout-0"))
    await task
    aborted = run.store.list_matches(status="aborted")
    assert [m.end_reason for m in aborted] == ["aborted: its rollout worker died"]
    trained = run.adapters.metadata("v0001")["data"]["match_ids"]
    assert len(trained) == len(set(trained)) == 6 and sorted(trained) == sorted(finished(run))
    assert aborted[0].match_id not in trained
    assert sorted(p.seed for p in (run.store.get_match(m, with_events=False) for m in trained)) == list(range(6))
