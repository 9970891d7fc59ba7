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


def test_the_update_task_takes_bf16_and_recomputed_old_logprobs_on_a_gpu_only(monkeypatch):
    import torch

    from maro.learner.update import gpu_settings

    config = LearnerConfig(update=UpdateConfig(bf16=False, old_logprobs="recorded"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_settings(config) == config
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    on_gpu = gpu_settings(config)
    assert on_gpu.update.bf16 and on_gpu.update.old_logprobs == "recompute"
    assert on_gpu.maro == config.maro and on_gpu.update.learning_rate == config.update.learning_rate


def test_the_learner_asks_for_a_gpu_when_the_cluster_has_one(cluster, monkeypatch):
    from maro.learner.distributed import learner_gpus

    assert learner_gpus(RayConfig()) == 0.0  # this cluster: 2 CPUs
    assert learner_gpus(RayConfig(learner_gpus=0.5)) == 0.5
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 8.0, "GPU": 2.0})
    assert learner_gpus(RayConfig()) == 1.0
