"""The transfer table of docs/results.md: `maro transfer` for several adapters against one frozen base.

    python benchmarks/transfer.py --out ~/maro-runs/transfer --n 1000 \
        --adapters kuhn-maro-s0=docs/results/experiment/kuhn_poker-v1-maro-s0/adapters/v0020 ... \
        [--warmstart kuhn_poker-v1] [--null ADAPTER] [--modes greedy] [--dtype bfloat16] [--archive DIR] [--summary]

Each adapter is one `maro transfer` run folder (`--out/NAME`) on the same held-out items (`--seed`,
`--n` per suite). The base model's replies do not depend on the adapter it is compared with, so
they are asked once: every run's side-B rows go to `--out/base.jsonl`, and each later run
starts with them in its `replies.jsonl` (a run resumes from that file and asks only what is
missing). `--warmstart GAME` trains `maro warmstart --game GAME` once (into `--out/warmstart-GAME`)
and adds its adapter to the list. `--null ADAPTER` adds a row `null`: that adapter with its LoRA B
matrices zeroed, which changes no weight, so the row measures how far the base differs from
itself through the model server (the noise floor of every other row). With `--archive`, every
run's `transfer.json` is copied there, with the base replies gathered so far (`base.jsonl.gz`) and
each warm start's adapter (`warmstart-GAME/`), so a machine whose `--out` is gone carries on from
the archive without asking the base or training the warm start again (keep one archive per base
model and `--dtype`). A run stopped by Ctrl-C or `kill` leaves its adapter's replies there too
(`NAME.replies.jsonl.gz`, gone once the run is done), so it resumes where it stopped on any
machine that has the archive (a NAME stands for one adapter: give another adapter another NAME).
`--summary` prints the table from the archive and the run folders alone. Run it with nothing else
loading the CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


ARCHIVED_BASE = "base.jsonl.gz"


def _lines(path: Path) -> list[str]:
    """A JSONL file's lines (gzipped where the name says so); a torn or corrupt archive reads as empty."""
    if not path.exists():
        return []
    if path.suffix != ".gz":
        return path.read_text(encoding="utf-8").splitlines()
    try:
        return gzip.decompress(path.read_bytes()).decode("utf-8").splitlines()
    except (OSError, EOFError, UnicodeDecodeError, zlib.error):
        log(f"{path} is not a readable gzip file: ignored")
        return []


def _answered(lines: list[str], side: str = "B") -> dict[tuple[str, str], str]:
    """The answered rows of one side (B: the base) among JSONL lines, the first of each: (mode, item) -> the line."""
    rows = {}
    for line in lines:
        try:
            row = json.loads(line)
            if row.get("side") == side and not row.get("error"):
                rows.setdefault((row["mode"], row["item"]), line)
        except (ValueError, KeyError, AttributeError):
            continue
    return rows


def _write_gz(path: Path, lines: list[str]) -> None:
    """Write JSONL lines gzipped, whole or not at all (a partial file replaced in one step)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(gzip.compress("".join(line + "\n" for line in lines).encode("utf-8"), mtime=0))
    partial.replace(path)


def _append_missing(run_dir: Path, side: str, rows: dict[tuple[str, str], str]) -> int:
    """Append to a run's replies.jsonl the rows of `side` it does not have yet; returns how many went in."""
    replies = run_dir / "replies.jsonl"
    have = set(_answered(_lines(replies), side))
    missing = [line for key, line in rows.items() if key not in have]  # a failed call here gives way to an answer
    if missing:
        _append(replies, missing)
    return len(missing)


def _append(path: Path, lines: list[str]) -> None:
    from maro.learner.transfer.run import end_torn_line

    path.parent.mkdir(parents=True, exist_ok=True)
    end_torn_line(path)  # a killed writer's torn last line stays alone
    with path.open("a", encoding="utf-8") as f:
        f.writelines(line + "\n" for line in lines)


def base_rows(out: Path, archive: Path | None = None) -> dict[tuple[str, str], str]:
    """The base model's replies gathered so far, in `out` and the archive: (mode, item) -> the JSON line."""
    return _answered(_lines(out / "base.jsonl") + (_lines(archive / ARCHIVED_BASE) if archive else []))


def archive_base(out: Path, archive: Path) -> int:
    """Write every base reply known (run folder and archive) to the archive; returns how many."""
    rows = base_rows(out, archive)
    _write_gz(archive / ARCHIVED_BASE, [rows[key] for key in sorted(rows)])
    return len(rows)


def seed_base(out: Path, run_dir: Path, archive: Path | None = None) -> int:
    """Put the base replies asked already into a run's replies.jsonl; returns how many went in."""
    return _append_missing(run_dir, "B", base_rows(out, archive))


def _unfinished(archive: Path, name: str) -> Path:
    return archive / f"{name}.replies.jsonl.gz"


def archive_unfinished(run_dir: Path, archive: Path, name: str) -> int:
    """Keep a stopped run's adapter replies in the archive, so another machine resumes it; returns how many."""
    rows = _answered(_lines(run_dir / "replies.jsonl") + _lines(_unfinished(archive, name)), "A")
    if rows:
        _write_gz(_unfinished(archive, name), [rows[key] for key in sorted(rows)])
    return len(rows)


def seed_unfinished(run_dir: Path, archive: Path, name: str) -> int:
    """Put a stopped run's archived adapter replies back into its replies.jsonl; returns how many went in."""
    return _append_missing(run_dir, "A", _answered(_lines(_unfinished(archive, name)), "A"))


def keep_base(out: Path, run_dir: Path) -> None:
    """Add a finished run's side-B (base) replies to base.jsonl."""
    known = base_rows(out)
    new = [line for key, line in _answered(_lines(run_dir / "replies.jsonl")).items() if key not in known]
    if new:
        _append(out / "base.jsonl", new)


def warm_start(out: Path, game: str, matches: int, archive: Path | None = None) -> Path:
    """The warm start adapter for `game`: the archived one, else the run folder's, else trained now."""
    kept = archive / f"warmstart-{game}" if archive else None
    if kept and (kept / "adapter_config.json").exists():
        return kept
    run_dir = out / f"warmstart-{game}"
    adapter = run_dir / "adapters" / "v0001"
    if not (adapter / "adapter_config.json").exists():
        log(f"warm start on {game} ({matches} bot matches)")
        subprocess.run([sys.executable, "-m", "maro.learner.cli", "warmstart", "--game", game,
                        "--matches", str(matches), "--run-dir", str(run_dir)], check=True)
    if kept:
        shutil.copytree(adapter, kept, dirs_exist_ok=True)
        return kept
    return adapter


def null_adapter(out: Path, like: Path) -> Path:
    """An adapter that changes nothing: `like`'s, with every LoRA B matrix zero (so B A x = 0). The
    base against it is the base against itself through the adapter's path: the paired difference
    that the model server's batching alone makes (bf16 greedy replies shift with the batch layout)."""
    from safetensors.torch import load_file, save_file

    target = out / "null-adapter"
    if not (target / "adapter_model.safetensors").exists():
        tensors = load_file(like / "adapter_model.safetensors")
        if not any(".lora_B." in key for key in tensors):
            raise ValueError(f"{like} has no LoRA B matrices to zero")
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(like / "adapter_config.json", target / "adapter_config.json")
        save_file({k: v.zero_() if ".lora_B." in k else v for k, v in tensors.items()},
                  target / "adapter_model.safetensors")
    return target


def _keep(name: str, what: str, step) -> None:
    """One keeping step of a run's end; one that fails is logged and skips no other."""
    try:
        step()
    except Exception as exc:  # noqa: BLE001 - logged; the run's own error (or stop) goes on up
        log(f"{name}: keeping {what} failed: {type(exc).__name__}: {exc}")


def run_one(out: Path, name: str, adapter: Path, args) -> dict:
    from maro.learner.transfer.run import TransferConfig, run_transfer

    run_dir = out / name
    result_path = run_dir / "transfer.json"
    if result_path.exists():
        result = json.loads(result_path.read_text())
        if result.get("n") == args.n and result.get("seed") == args.seed:
            return result
    seeded = seed_base(out, run_dir, args.archive)
    resumed = seed_unfinished(run_dir, args.archive, name) if args.archive else 0
    log(f"{name}: {adapter} against the base ({seeded} base replies reused"
        + (f", {resumed} of its own from the archive)" if resumed else ")"))
    config = TransferConfig(run_dir=run_dir, adapter=adapter, n=args.n, seed=args.seed, modes=tuple(args.modes),
                            dtype=args.dtype, concurrency=args.concurrency)
    result = None
    try:
        result = asyncio.run(run_transfer(config))
    finally:  # stopped or not, what was asked is kept: first what only this machine holds
        if args.archive and result is None:
            _keep(name, "its replies", lambda: log(
                f"{name}: stopped; {archive_unfinished(run_dir, args.archive, name)} of its replies archived"))
        _keep(name, "the base replies", lambda: keep_base(out, run_dir))
        if args.archive:
            _keep(name, "the archived base replies", lambda: archive_base(out, args.archive))
    return result


def results(out: Path, archive: Path | None, names: list[str]) -> dict[str, dict]:
    found = {}
    for name in names:
        for path in ([archive / f"{name}.json"] if archive else []) + [out / name / "transfer.json"]:
            if path.exists():
                found[name] = json.loads(path.read_text())
                break
    return found


def table(found: dict[str, dict]) -> str:
    """One row per adapter, suite and mode: base accuracy, adapter accuracy, paired difference."""
    lines = ["| adapter | suite | mode | items | base | adapter | adapter - base [95% CI] |",
             "| --- | --- | --- | ---: | ---: | ---: | --- |"]
    for name, result in found.items():
        for suite, modes in result["suites"].items():
            for mode, categories in modes.items():
                e = categories["all"]
                d = e["a_minus_b"]
                lines.append(f"| {name} | {suite} | {mode} | {e['items']} | {100 * e['B']['mean']:.1f}% | "
                             f"{100 * e['A']['mean']:.1f}% | {100 * d['mean']:+.1f} "
                             f"[{100 * d['ci'][0]:+.1f}, {100 * d['ci'][1]:+.1f}] |")
    return "\n".join(lines)


def agreement(run_dir: Path) -> dict[str, dict[str, int]]:
    """Per suite, over the items both sides answered (greedy): how many, how many replies are the
    same text, and how many are right on one side only (what the paired interval is made of)."""
    lines = _lines(run_dir / "replies.jsonl")
    a, b = _answered(lines, "A"), _answered(lines, "B")
    counts: dict[str, dict[str, int]] = {}
    for key in sorted(a.keys() & b.keys()):
        if key[0] != "greedy":
            continue
        ra, rb = json.loads(a[key]), json.loads(b[key])
        c = counts.setdefault(ra["suite"], {"items": 0, "same_reply": 0, "one_side_right": 0})
        c["items"] += 1
        c["same_reply"] += ra["reply"] == rb["reply"]
        c["one_side_right"] += ra["correct"] != rb["correct"]
    return counts


def categories(found: dict[str, dict], suite: str, mode: str = "greedy") -> str:
    """Base accuracy per category of a suite (from the first run that has it)."""
    for result in found.values():
        cats = result["suites"].get(suite, {}).get(mode)
        if cats:
            lines = ["| category | items | base [95% CI] |", "| --- | ---: | --- |"]
            for name, e in sorted(cats.items()):
                b = e["B"]
                lines.append(f"| {name} | {e['items']} | {100 * b['mean']:.1f}% "
                             f"[{100 * b['ci'][0]:.1f}, {100 * b['ci'][1]:.1f}] |")
            return "\n".join(lines)
    return ""


def _stop(signum, frame) -> None:
    raise SystemExit(128 + signum)  # `kill` unwinds like Ctrl-C, so a stopped run keeps its replies


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path.home() / "maro-runs" / "transfer")
    parser.add_argument("--adapters", nargs="*", default=[], help="NAME=ADAPTER_FOLDER, in the table's order")
    parser.add_argument("--warmstart", nargs="*", default=[], help="games to train a warm start on and add")
    parser.add_argument("--warmstart-matches", type=int, default=200)
    parser.add_argument("--null", type=Path, default=None, metavar="ADAPTER",
                        help="add a row `null`: ADAPTER with its LoRA B zeroed, the base against itself")
    parser.add_argument("--n", type=int, default=1000, help="items per suite")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--modes", nargs="+", default=["greedy"], choices=["greedy", "sampled"])
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "auto"])
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--archive", type=Path, default=None)
    parser.add_argument("--summary", action="store_true", help="only print the tables of what is there")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    adapters: dict[str, Path] = {}
    for item in args.adapters:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            parser.error(f"--adapters {item!r}: expected NAME=FOLDER")
        adapters[name] = Path(path)
    names = ["null"] * bool(args.null) + [f"warmstart-{g}" for g in args.warmstart] + list(adapters)
    if not args.summary:
        if args.null:
            adapters = {"null": null_adapter(args.out, args.null), **adapters}
        for game in args.warmstart:
            adapters = {f"warmstart-{game}": warm_start(args.out, game, args.warmstart_matches, args.archive),
                        **adapters}
        for name in names:
            archived = args.archive / f"{name}.json" if args.archive else None
            if archived and archived.exists():
                kept = json.loads(archived.read_text())
                if kept.get("n") == args.n and kept.get("seed") == args.seed:
                    _unfinished(args.archive, name).unlink(missing_ok=True)
                    continue
            result = run_one(args.out, name, adapters[name], args)
            log(f"{name}: done in {result['seconds'] / 60:.0f} min")
            if args.archive:
                args.archive.mkdir(parents=True, exist_ok=True)
                partial = args.archive / f"{name}.json.partial"  # replaced in one step: never a torn result
                shutil.copy(args.out / name / "transfer.json", partial)
                partial.replace(args.archive / f"{name}.json")
                _unfinished(args.archive, name).unlink(missing_ok=True)
    found = results(args.out, args.archive, names)
    print(table(found))
    for name in names:
        for suite, c in agreement(args.out / name).items():
            print(f"{name} {suite}: {c['same_reply']} of {c['items']} greedy replies the same as the base's, "
                  f"{c['one_side_right']} right on one side only")
    for suite in ("if", "math"):
        print(f"\nbase model per category, {suite}:\n{categories(found, suite)}")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _stop)
    main()
