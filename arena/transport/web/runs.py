"""Self-play run folders for the training pages: metrics rows, adapter versions, curves, and
the run's own match store (read-only use, opened per request)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from maro.arena.store.records import MatchRecord

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")
"""A run folder's name as a page may ask for it."""


def is_run(path: Path) -> bool:
    return bool(NAME.fullmatch(path.name)) and ((path / "metrics.jsonl").is_file() or (path / "state.json").is_file())


def metrics(run: Path) -> list[dict[str, Any]]:
    rows = []
    path = run / "metrics.jsonl"
    if not path.is_file():
        return rows
    with path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            try:
                row = json.loads(line)
            except ValueError:
                continue  # a line being written, or a torn one: the next refresh has it
            if isinstance(row, dict):
                rows.append(row)
            if len(rows) >= 100_000:
                break
    return rows


def adapters(run: Path) -> list[str]:
    folder = run / "adapters"
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and re.fullmatch(r"v\d{1,6}", p.name))


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def curves(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Series of a run's metrics rows for the training page's charts: valid-action rate, outcome
    per role and per opponent kind, the probe against the bot, loss terms, KL and entropy."""
    charts: dict[str, dict[str, list]] = {"valid action rate": {}, "outcome by role": {},
                                          "outcome by opponent": {}, "probe against the bot": {},
                                          "loss": {}, "KL to the base, entropy": {}}

    def put(chart: str, series: str, i: int, value: Any) -> None:
        charts[chart].setdefault(series, [None] * len(rows))[i] = _number(value)

    for i, row in enumerate(rows):
        put("valid action rate", "play", i, row.get("valid_rate"))
        probe = row.get("probe") if isinstance(row.get("probe"), dict) else {}
        if probe:
            put("valid action rate", "probe", i, probe.get("valid_rate"))
            put("probe against the bot", "mean outcome", i, probe.get("mean_outcome"))
        for key, value in (row.get("outcome") or {}).items():
            kind, _, role = key.rpartition("/")
            if "/" in kind:  # `self/<game>/<role>`, `vs_bot/...`, `past/...`
                put("outcome by opponent", f"{kind.split('/')[0]} {role}", i, value)
            else:
                put("outcome by role", role, i, value)
        update = row.get("update") or {}
        for key in ("loss", "maro/loss"):
            if key in update:
                put("loss", key, i, update[key])
        for key in ("kl", "entropy"):
            if key in update:
                put("KL to the base, entropy", key, i, update[key])
    x = [_number(row.get("iteration")) or i + 1 for i, row in enumerate(rows)]
    return {"x": x, "charts": {name: series for name, series in charts.items() if series}}


def _store(run: Path):
    from maro.arena.store.matches import MatchStore

    path = run / "matches.sqlite"
    return MatchStore(str(path)) if path.is_file() else None


def recent_matches(run: Path, limit: int) -> list[MatchRecord]:
    store = _store(run)
    if store is None:
        return []
    try:
        return store.list_matches(limit=limit, newest_first=True)
    finally:
        store.close()


def match(run: Path, match_id: str) -> MatchRecord | None:
    store = _store(run)
    if store is None:
        return None
    try:
        return store.get_match(match_id)
    finally:
        store.close()
