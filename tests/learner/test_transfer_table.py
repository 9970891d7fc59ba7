"""benchmarks/transfer.py: the base model's replies asked once and reused by every later run."""

from __future__ import annotations

import importlib.util
import json
import signal
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "transfer.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("transfer_table", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(side: str, item: str, correct: bool, error: str = "") -> dict:
    return {"side": side, "mode": "greedy", "suite": "if", "item": item, "category": "no_commas",
            "correct": correct, "reply": "x", "error": error}


def _write(path: Path, rows: list[dict], torn: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + ('{"side": "B", "mo' if torn else ""))


def test_base_replies_of_a_finished_run_seed_the_next(bench, tmp_path):
    first = tmp_path / "first"
    _write(first / "replies.jsonl", [_row("A", "i1", True), _row("B", "i1", False), _row("B", "i2", True),
                                     _row("B", "i3", False, error="timeout")], torn=True)
    bench.keep_base(tmp_path, first)
    assert set(bench.base_rows(tmp_path)) == {("greedy", "i1"), ("greedy", "i2")}  # failed calls are asked again
    bench.keep_base(tmp_path, first)  # kept once
    assert len((tmp_path / "base.jsonl").read_text().splitlines()) == 2

    second = tmp_path / "second"
    _write(second / "replies.jsonl", [_row("B", "i2", True)])  # a resumed run that has one already
    assert bench.seed_base(tmp_path, second) == 1
    rows = [json.loads(line) for line in (second / "replies.jsonl").read_text().splitlines()]
    assert sorted((r["side"], r["item"]) for r in rows) == [("B", "i1"), ("B", "i2")]
    assert bench.seed_base(tmp_path, second) == 0


def test_table_rows_carry_both_accuracies_and_the_paired_interval(bench):
    entry = {"items": 1000, "A": {"mean": 0.31, "ci": [0.28, 0.34]}, "B": {"mean": 0.29, "ci": [0.26, 0.32]},
             "a_minus_b": {"mean": 0.02, "ci": [-0.005, 0.046]}}
    text = bench.table({"maro-s0": {"suites": {"if": {"greedy": {"all": entry}}}}})
    assert "| maro-s0 | if | greedy | 1000 | 29.0% | 31.0% | +2.0 [-0.5, +4.6] |" in text


def test_base_replies_and_the_warm_start_outlive_the_run_folder_in_the_archive(bench, tmp_path, monkeypatch):
    out, archive = tmp_path / "out", tmp_path / "archive"
    _write(out / "first" / "replies.jsonl", [_row("A", "i1", True), _row("B", "i1", False), _row("B", "i2", True)])
    bench.keep_base(out, out / "first")
    assert bench.archive_base(out, archive) == 2
    fresh = tmp_path / "fresh"  # another machine: the run folders are gone, the archive is not
    assert set(bench.base_rows(fresh, archive)) == {("greedy", "i1"), ("greedy", "i2")}
    assert bench.seed_base(fresh, fresh / "next", archive) == 2
    (archive / "base.jsonl.gz").write_bytes(b"\x1f\x8b torn")  # a corrupt archive costs the base again, no more
    assert bench.base_rows(fresh, archive) == {}

    def train(cmd, check):  # the first call trains the warm start into the run folder
        adapter = Path(cmd[cmd.index("--run-dir") + 1]) / "adapters" / "v0001"
        adapter.mkdir(parents=True)
        (adapter / "adapter_config.json").write_text("{}")

    monkeypatch.setattr(bench.subprocess, "run", train)
    kept = bench.warm_start(out, "kuhn_poker-v1", 10, archive)
    assert kept == archive / "warmstart-kuhn_poker-v1" and (kept / "adapter_config.json").exists()
    monkeypatch.setattr(bench.subprocess, "run", lambda *a, **k: pytest.fail("trained twice"))
    assert bench.warm_start(fresh, "kuhn_poker-v1", 10, archive) == kept


def test_a_stopped_run_keeps_its_replies_in_the_archive_and_resumes_from_them_elsewhere(bench, tmp_path, monkeypatch):
    import maro.learner.transfer.run as run

    out, archive = tmp_path / "out", tmp_path / "archive"
    args = bench.argparse.Namespace(n=1, seed=1, modes=["greedy"], dtype="float32", concurrency=1, archive=archive)
    seen = []

    async def stopped(config):  # asks A and B for i1, then `kill` reaches it mid-line
        replies = config.run_dir / "replies.jsonl"
        kept = replies.read_text() if replies.exists() else ""
        _write(replies, [_row("A", "i1", True), _row("B", "i1", False), _row("A", "i2", True, error="timeout")],
               torn=True)
        replies.write_text(kept + replies.read_text())
        bench._stop(signal.SIGTERM, None)

    monkeypatch.setattr(run, "run_transfer", stopped)
    with pytest.raises(SystemExit):
        bench.run_one(out, "kuhn-rae-s1", tmp_path / "adapter", args)
    assert bench.seed_unfinished(tmp_path / "empty", archive, "kuhn-rae-s1") == 1  # the answered A row only
    assert set(bench.base_rows(tmp_path / "gone", archive)) == {("greedy", "i1")}  # and its base reply

    other = tmp_path / "other"  # a second machine gets further, i3, and is stopped too: the archive holds both
    _write(other / "kuhn-rae-s1" / "replies.jsonl", [_row("A", "i3", False)])
    with pytest.raises(SystemExit):
        bench.run_one(other, "kuhn-rae-s1", tmp_path / "adapter", args)
    assert bench.seed_unfinished(tmp_path / "empty2", archive, "kuhn-rae-s1") == 2

    async def finished(config):  # another machine: both replies are back before anything is asked
        seen.extend(json.loads(line) for line in (config.run_dir / "replies.jsonl").read_text().splitlines())
        (config.run_dir / "transfer.json").write_text(json.dumps({"n": 1, "seed": 1, "seconds": 1, "suites": {}}))
        return {"n": 1, "seed": 1, "seconds": 1, "suites": {}}

    monkeypatch.setattr(run, "run_transfer", finished)
    fresh = tmp_path / "fresh"
    bench.main(["--out", str(fresh), "--n", "1", "--dtype", "float32", "--archive", str(archive),
                "--adapters", f"kuhn-rae-s1={tmp_path / 'adapter'}"])
    assert sorted((r["side"], r["item"]) for r in seen) == [("A", "i1"), ("A", "i3"), ("B", "i1")]
    assert (archive / "kuhn-rae-s1.json").exists()
    assert not (archive / "kuhn-rae-s1.replies.jsonl.gz").exists()  # done: the archive keeps the result only


def test_rows_appended_after_a_torn_last_line_stay_whole(bench, tmp_path):
    _write(tmp_path / "run" / "replies.jsonl", [_row("A", "i1", True)], torn=True)
    assert bench.seed_base(tmp_path, tmp_path / "run") == 0
    _write(tmp_path / "base.jsonl", [_row("B", "i1", True)])
    assert bench.seed_base(tmp_path, tmp_path / "run") == 1
    assert bench.seed_base(tmp_path, tmp_path / "run") == 0  # the appended row reads back whole


def test_the_null_adapter_changes_no_output_of_the_model(bench, tmp_path, tiny_model_dir):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from tests.helpers import save_tiny_adapter

    save_tiny_adapter(tiny_model_dir, tmp_path / "trained", seed=3)
    null = bench.null_adapter(tmp_path / "out", tmp_path / "trained")
    ids = torch.tensor([[1, 5, 9, 13, 2]])
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    with torch.no_grad():
        expected = base(ids).logits
        trained = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                                            tmp_path / "trained").eval()
        assert not torch.allclose(trained(ids).logits, expected)  # the adapter it was made from does change it
        same = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), null).eval()
        assert torch.equal(same(ids).logits, expected)
    assert bench.null_adapter(tmp_path / "out", tmp_path / "elsewhere") == null  # made once


def test_agreement_counts_the_same_replies_and_the_one_sided_items(bench, tmp_path):
    same = dict(_row("A", "i1", True), suite="if")
    rows = [same, dict(same, side="B"), _row("A", "i2", True), dict(_row("B", "i2", False), reply="y"),
            _row("A", "i3", False), _row("B", "i4", True), dict(_row("B", "i5", True), suite="math"),
            dict(_row("A", "i5", True), suite="math")]
    _write(tmp_path / "run" / "replies.jsonl", rows, torn=True)
    assert bench.agreement(tmp_path / "run") == {"if": {"items": 2, "same_reply": 1, "one_side_right": 1},
                                                 "math": {"items": 1, "same_reply": 1, "one_side_right": 0}}
