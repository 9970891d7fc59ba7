"""benchmarks/transfer.py: the base model's replies asked once and reused by every later run."""

from __future__ import annotations

import importlib.util
import json
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
