"""The self-play loop: plans, a short run with the tiny model, resume after a kill, eval statistics."""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from maro.learner.config import UpdateConfig
from maro.learner.evaluate import EvalConfig, bootstrap_ci, eval_plans, run_eval
from maro.learner.loop import OpponentMix, SelfPlayConfig, SelfPlayRun, iteration_plans, plan_kind
from maro.learner.runs import read_metrics
from maro.learner.update import LearnerConfig

FAST = LearnerConfig(update=UpdateConfig(batch_size=4, max_prompt_tokens=256, max_completion_tokens=8))


def test_opponent_mix_counts_add_up():
    assert OpponentMix().counts(16) == {"self": 8, "past": 4, "bot": 4}
    assert sum(OpponentMix(self_play=1, past=1, bot=1).counts(10).values()) == 10
    assert OpponentMix(self_play=0, past=0, bot=1).counts(3) == {"self": 0, "past": 0, "bot": 3}
    with pytest.raises(ValueError):
        OpponentMix(self_play=0, past=0, bot=0)


def test_plans_rotate_seats_and_use_the_pool(tmp_path):
    config = SelfPlayConfig(run_dir=tmp_path, games=["bargaining-v1", "undercover-v1"],
                            players={"undercover-v1": 5}, matches_per_iteration=12, seed=7)
    plans = iteration_plans(config, 2, "cur", ["old1", "old2"])
    assert plans == iteration_plans(config, 2, "cur", ["old1", "old2"])  # deterministic
    assert [p.seed for p in plans] == list(range(7 + 24, 7 + 36))  # no seed repeats across iterations
    assert Counter(p.game_id for p in plans) == {"bargaining-v1": 6, "undercover-v1": 6}
    assert all(p.num_players == (2 if p.game_id == "bargaining-v1" else 5) for p in plans)
    assert Counter(plan_kind(p, "cur") for p in plans) == {"self": 6, "past": 3, "bot": 3}
    for p in plans:
        current = [s for s, m in zip(p.model_seats, p.seat_models) if m == "cur"]
        assert current, "the current adapter plays in every match"
        assert set(p.seat_models) <= {"cur", "old1", "old2"}
    # Over the iteration the current adapter sits in every seat of bargaining.
    seats = {s for p in plans if p.game_id == "bargaining-v1" for s, m in zip(p.model_seats, p.seat_models) if m == "cur"}
    assert seats == {0, 1}
    # Without past versions, `past` matches are self-play.
    assert {plan_kind(p, "cur") for p in iteration_plans(config, 0, "cur", [])} == {"self", "bot"}
    with pytest.raises(ValueError, match="seats"):
        SelfPlayConfig(games=["bargaining-v1"], players={"bargaining-v1": 3}).num_players("bargaining-v1")


def _config(tmp_path, model_dir, iterations=2, **kw):
    return SelfPlayConfig(run_dir=tmp_path / "run", games=["bargaining-v1"], iterations=iterations,
                          matches_per_iteration=4, model=str(model_dir), max_tokens=8, learner=FAST, **kw)


async def test_selfplay_run_writes_versions_metrics_and_plots(tmp_path, tiny_model_dir):
    run = SelfPlayRun(_config(tmp_path, tiny_model_dir, probe_matches=2, transfer_every=2, transfer_items=1))
    lines = await run.run()
    assert [line["iteration"] for line in lines] == [1, 2]
    # the transfer probe: the starting policy first, then every 2nd iteration's new version
    assert lines[0]["transfer_start"]["version"] == "base" and "transfer" not in lines[0]
    assert lines[1]["transfer"]["version"] == "v0002" and lines[1]["transfer"]["items"] == 1
    assert all(0 <= lines[1]["transfer"][suite] <= 1 for suite in ("if", "math"))
    assert run.adapters.versions() == ["v0001", "v0002"]
    assert run.adapters.metadata("v0002")["parent"] == "v0001"
    first, second = (set(run.adapters.metadata(v)["data"]["match_ids"]) for v in ("v0001", "v0002"))
    assert len(first) == len(second) == 4 and not first & second  # each match trained on once
    assert lines[1]["trained_from"] == "v0001" and lines[1]["opponents"].get("past") == 1
    assert lines[0]["matches"] == 4 and 0 <= lines[0]["valid_rate"] <= 1 and lines[0]["update"]["maro/behaviors"] > 0
    assert [line["iteration"] for line in read_metrics(run.dir)] == [1, 2]
    # What the model server did in each play phase: every request prefilled and decoded, and
    # prompts that start like earlier ones (the game's rules) reusing their cached prefix.
    serving = [line["serving"] for line in lines]
    assert all(s["prefix_hits"] > 0 and s["prefix_reused_tokens"] > 32 * s["prefix_hits"] for s in serving)
    assert all(s["requests"] >= lines[0]["attempts"] // 2 and s["prefill_tokens"] > 0 and s["decode_rows"] > 0
               for s in serving)
    assert all(s["prefill_s"] > 0 and s["decode_s"] > 0 and s["mean_batch_rows"] >= 1 for s in serving)
    for name in ("outcome.png", "valid_rate.png", "loss.png", "probe.png", "transfer.png"):
        assert (run.dir / "plots" / name).read_bytes()[:4] == b"\x89PNG"
    # The probe: the starting policy before the first update, each new version after its update,
    # on the same seeds against the bot; never trained on.
    assert lines[0]["probe_start"]["version"] == "base" and "probe_start" not in lines[1]
    assert [line["probe"]["version"] for line in lines] == ["v0001", "v0002"]
    assert all(line["probe"]["matches"] == 2 and 0 <= line["probe"]["valid_rate"] <= 1 for line in lines)
    probe_ids = {m.match_id for m in run.store.list_matches(limit=100)} - first - second
    assert len(probe_ids) == 6
    # The past-version match played v0001's seats under that version's name.
    played = [run.store.get_match(m, with_events=False) for m in second]
    assert any("smollm2@base" in s.name for m in played for s in m.seats)
    # A finished run asked for one more iteration continues from where it stopped.
    more = SelfPlayRun(_config(tmp_path, tiny_model_dir, iterations=3))
    assert more.state.iteration == 2 and more.state.version == "v0002"
    with pytest.raises(ValueError, match="different run"):
        SelfPlayRun(_config(tmp_path, tiny_model_dir, seed=99))


async def test_resume_after_publish_does_not_update_twice(tmp_path, tiny_model_dir):
    run = SelfPlayRun(_config(tmp_path, tiny_model_dir, iterations=1))
    await run.run()
    state = json.loads((run.dir / "state.json").read_text())
    played = run.adapters.metadata("v0001")["data"]["match_ids"]
    # As if killed between publishing v0001 and saving the state: all matches played, not advanced.
    plans_done = {str(i): m for i, m in enumerate(sorted(played))}
    (run.dir / "state.json").write_text(json.dumps({**state, "iteration": 0, "version": None, "played": plans_done}))
    again = SelfPlayRun(_config(tmp_path, tiny_model_dir, iterations=2))
    await again.run()
    assert again.adapters.versions() == ["v0001", "v0002"]
    assert again.adapters.metadata("v0002")["parent"] == "v0001"
    assert not set(again.adapters.metadata("v0002")["data"]["match_ids"]) & set(played)


@pytest.mark.slow
def test_killed_mid_iteration_resumes_without_losing_or_repeating_matches(tmp_path, tiny_model_dir):
    config = _config(tmp_path, tiny_model_dir, iterations=1, concurrency=1)
    config.run_dir.mkdir(parents=True)
    (tmp_path / "config.json").write_text(config.model_dump_json())
    code = ("import asyncio,sys; from pathlib import Path; from maro.learner.loop import SelfPlayConfig, SelfPlayRun;"
            "c=SelfPlayConfig.model_validate_json(Path(sys.argv[1]).read_text()); asyncio.run(SelfPlayRun(c).run())")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "config.json")], env=os.environ.copy(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    state_path = config.run_dir / "state.json"
    deadline = time.time() + 240
    try:
        while time.time() < deadline:
            if state_path.exists() and json.loads(state_path.read_text())["played"]:
                break
            time.sleep(0.05)
        else:
            pytest.fail("no match finished in time")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    kept = json.loads(state_path.read_text())["played"]
    assert 1 <= len(kept) < 4
    run = SelfPlayRun(config)
    import asyncio

    asyncio.run(run.run())
    trained = run.adapters.metadata("v0001")["data"]["match_ids"]
    assert len(trained) == len(set(trained)) == 4
    assert set(kept.values()) <= set(trained)
    seeds = sorted(run.store.get_match(m, with_events=False).seed for m in trained)
    assert seeds == sorted(p.seed for p in iteration_plans(config, 0, "x", []))


def test_tables_of_any_size_get_their_params():
    from maro.arena.engine import make_game
    from maro.learner.rollouts import match_params

    assert match_params("bargaining-v1", 2) == {}
    for game_id, n in (("undercover-v1", 4), ("werewolf-v1", 7), ("prisoners_dilemma-v1", 3)):
        assert make_game(game_id, match_params(game_id, n)).num_players() == n


def test_bootstrap_ci_resamples_clusters():
    mean, lo, hi = bootstrap_ci([[1.0, 1.0], [0.0], [1.0]], reps=2000)
    assert mean == pytest.approx(0.75)
    assert 0.0 <= lo < mean < hi <= 1.0
    assert bootstrap_ci([[0.5], [0.5]], reps=200) == (0.5, 0.5, 0.5)
    assert all(v != v for v in bootstrap_ci([], reps=200))  # nan when empty


def test_eval_plans_swap_seats():
    plans = eval_plans("undercover-v1", 4, 2, 100, "A", "B")
    assert [p.seed for p in plans] == [100, 100, 101, 101]
    assert plans[0].seat_models == ("A", "B", "A", "B") and plans[1].seat_models == ("B", "A", "B", "A")


async def test_eval_adapter_against_base(tmp_path, tiny_model_dir):
    run = SelfPlayRun(_config(tmp_path, tiny_model_dir, iterations=1))
    await run.run()
    result = await run_eval(EvalConfig(run_dir=tmp_path / "eval", adapter=run.adapters.path("v0001"),
                                       games=["bargaining-v1"], matches=4, model=str(tiny_model_dir),
                                       max_tokens=8, bootstrap=200))
    g = result["games"]["bargaining-v1"]
    assert g["matches"] == 4 and g["seeds"] == 2 and g["a_minus_b"]["seeds"] == 2
    rows = {(r["side"], r["role"]): r for r in g["rows"]}
    assert {("A", "buyer"), ("A", "seller"), ("B", "buyer"), ("B", "seller")} <= set(rows)
    assert rows[("A", "buyer")]["n"] == rows[("B", "seller")]["n"] == 2  # seats swapped
    assert json.loads((tmp_path / "eval" / "eval.json").read_text())["b"] == "base"
    # Against the scripted bot: A in each seat of every seed in turn, the bot in the other.
    bot = await run_eval(EvalConfig(run_dir=tmp_path / "eval-bot", adapter=run.adapters.path("v0001"), vs_bot=True,
                                    games=["bargaining-v1"], matches=4, model=str(tiny_model_dir), max_tokens=8,
                                    bootstrap=200))
    g = bot["games"]["bargaining-v1"]
    rows = {(r["side"], r["role"]): r for r in g["rows"]}
    assert bot["b"] == "bot" and rows[("A", "all")]["n"] == rows[("B", "all")]["n"] == 4
    assert g["a_minus_b"]["seeds"] == 2 and set(bot["valid_rate"]) == {"A"}
    with pytest.raises(FileNotFoundError):
        await run_eval(EvalConfig(run_dir=tmp_path / "bad", adapter=tmp_path, model=str(tiny_model_dir)))


def test_selfplay_trains_at_the_play_temperature_with_the_base_logprobs_as_reference():
    from maro.learner.config import UpdateConfig
    from maro.learner.loop import _tempered
    from maro.learner.update import LearnerConfig

    tempered = _tempered(LearnerConfig(), 0.7).update
    assert tempered.temperature == 0.7 and tempered.base_logprobs_as_reference
    chosen = LearnerConfig(update=UpdateConfig(base_logprobs_as_reference=False))
    assert not _tempered(chosen, 0.7).update.base_logprobs_as_reference  # an explicit choice stands
    # `maro selfplay` rebuilds its learner from dumped settings: "not chosen" survives the round trip.
    dumped = LearnerConfig.model_validate(LearnerConfig().model_dump())
    assert _tempered(dumped, 0.7).update.base_logprobs_as_reference


def test_demo_comparison_pairs_seeds_and_says_when_a_change_is_noise():
    from maro.learner.demo import compare, verdict

    before = {"per_seed": {k: [0.0, 0.1] for k in range(20)}}
    gain = compare(before, {"per_seed": {k: [0.5, 0.6] for k in range(20)}}, reps=500)
    assert gain["after_minus_before"]["mean"] == pytest.approx(0.5) and gain["after_minus_before"]["supported"]
    assert verdict(gain).startswith("a gain of +0.500")
    wobble = compare(before, {"per_seed": {k: [0.05 + (0.3 if k % 2 else -0.3)] for k in range(20)}}, reps=500)
    assert not wobble["after_minus_before"]["supported"] and "within noise" in verdict(wobble)
    only_some = compare(before, {"per_seed": {k: [0.2] for k in range(5)}}, reps=500)
    assert only_some["after_minus_before"]["seeds"] == 5
