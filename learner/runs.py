"""A self-play run folder's files: `config.json`, `state.json` and `metrics.jsonl` (one line per
iteration), written atomically so a killed run never leaves half a file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

STATE = "state.json"
METRICS = "metrics.jsonl"


def atomic_write(path: Path, text: str) -> None:
    """Replace `path` with `text` in one step (a temporary file beside it, then a rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """metrics.jsonl, one line per update; a repeated iteration (a resumed run) keeps its last line."""
    path = Path(run_dir) / METRICS
    if not path.exists():
        return []
    lines: dict[int, dict] = {}
    for raw in path.read_text().splitlines():
        if raw.strip():
            line = json.loads(raw)
            lines[line["iteration"]] = line
    return [lines[k] for k in sorted(lines)]
