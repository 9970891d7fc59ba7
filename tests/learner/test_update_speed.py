"""benchmarks/update_speed.py on the tiny model: arena-like records, then every timed path yields figures."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

from maro.learner.credit import MaroConfig, credit

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "update_speed.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("update_speed", _PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


def test_played_matches_are_recorded_as_the_arena_records_them(bench):
    matches, behaviors = bench.play_matches("bargaining-v1", 6, seed=3)
    assert len(matches) == 6 and all(m.status == "finished" and m.outcome for m in matches)
    seats = {m.match_id: m.seats for m in matches}
    by_seat: dict[tuple[str, int], list[int]] = {}
    for b in behaviors:
        assert b.accepted and b.messages and b.completion == b.action_text
        assert b.snapshot_before and b.snapshot_after and b.snapshot_before != b.snapshot_after
        assert b.role == seats[b.match_id][b.seat].role
        by_seat.setdefault((b.match_id, b.seat), []).append(b.index)
    assert all(indices == list(range(len(indices))) for indices in by_seat.values())
    credited = credit(matches, behaviors, MaroConfig()).credited
    assert len(credited) == len(behaviors)


def test_benchmark_yields_finite_figures_on_the_tiny_model(bench, tiny_model_dir):
    matches, behaviors = bench.play_matches("bargaining-v1", 8)
    result = bench.run_benchmark(matches, behaviors, tiny_model_dir, batch_size=2, steps=2, reps=1, log=lambda _: None)
    # Play-time log-probs as the model server records them: real ones (< 0) on the trained rows.
    assert all(b.logprobs and all(t.logprob <= 0 for t in b.logprobs) for b in result.behaviors)
    credited = credit(matches, result.behaviors, MaroConfig()).credited  # the sample order the plan indexes
    trained = {credited[i].behavior.id for rows in result.maro[0].plan for i in rows}
    assert all(t.logprob < 0 for b in result.behaviors if b.id in trained for t in b.logprobs)
    figures = bench.summary(result)
    for key in ("bare_tps", "maro_tps", "maro_ref_tps", "maro_nokl_tps", "book_step_s", "book_share"):
        assert math.isfinite(figures[key]) and figures[key] > 0, key
    # Both paths timed the same micro-batches: one timed step each, with the same token count.
    assert result.bare[0].tokens == result.maro[0].tokens == result.maro_ref[0].tokens == result.maro_nokl[0].tokens
    # Every behavior was played by the base model: its recorded log-probs were the KL reference.
    assert result.maro[0].reference_forwards_skipped == 2 and result.maro_ref[0].reference_forwards_skipped == 0
    assert figures["skipped_share"] == 1.0
