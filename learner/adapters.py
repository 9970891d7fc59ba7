"""The one owner of the adapter formats: version folders on disk (v0001, v0002, ... with a LATEST
pointer, published atomically; read by the learner and the model server alike) and the model
names that select a version (`smollm2`, `smollm2@v0003`, `smollm2@base`)."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_VERSION = re.compile(r"^v(\d+)$")
META = "maro.json"
POINTER = "LATEST"
BASE = "base"


def is_version(name: str) -> bool:
    """`v0003` and the like: the name of a published version folder."""
    return bool(_VERSION.match(name))


def version_names(root: Path | None, with_weights: bool = False) -> list[str]:
    """The version folders under `root`, oldest first; with `with_weights`, only those holding an
    adapter (a folder being written has no adapter_config.json yet)."""
    if root is None or not Path(root).is_dir():
        return []
    names = [p.name for p in Path(root).iterdir() if p.is_dir() and is_version(p.name)
             and (not with_weights or (p / "adapter_config.json").exists())]
    return sorted(names, key=lambda n: int(n[1:]))


def read_latest(root: Path | None) -> str | None:
    """The version LATEST names (None without a pointer or an empty one)."""
    pointer = Path(root) / POINTER if root is not None else None
    if pointer is None or not pointer.exists():
        return None
    return pointer.read_text().strip() or None


@dataclass(frozen=True)
class ModelRef:
    """A served model name with the version it selects: `name` alone is the newest adapter,
    `name@vNNNN` one pinned version, `name@base` the base model without an adapter. `name` may
    carry a provider prefix (`openai/smollm2@v0002`)."""

    name: str
    version: str | None = None
    """None (the newest), `base`, or a version folder name."""

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        head, sep, tail = (text or "").rpartition("@")
        if sep and (tail == BASE or is_version(tail)):
            return cls(head, tail)
        return cls(text or "")

    def format(self) -> str:
        return self.name + (f"@{self.version}" if self.version else "")

    @property
    def number(self) -> int | None:
        """The version as a number (`base` is 0); None for a name that pins none."""
        if self.version is None:
            return None
        return 0 if self.version == BASE else int(self.version[1:])

    def lag(self, current: str | None) -> int | None:
        """Versions this name lags behind `current` (a version folder name; None: the base model);
        None for a name that pins no version."""
        if self.number is None:
            return None
        now = ModelRef("", current).number if current else 0
        return max(0, (now or 0) - self.number)


class AdapterRegistry:
    """The folder the learner publishes into and the model server reads from."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def versions(self) -> list[str]:
        return version_names(self.root)

    def latest(self) -> str | None:
        name = read_latest(self.root)
        return name if name and (self.root / name).is_dir() else None

    def path(self, name: str) -> Path:
        return self.root / name

    def metadata(self, name: str) -> dict[str, Any]:
        return json.loads((self.root / name / META).read_text())

    def trained_match_ids(self) -> set[str]:
        """Matches some published version already trained on (its `data.match_ids`)."""
        used: set[str] = set()
        for name in self.versions():
            used.update(self.metadata(name).get("data", {}).get("match_ids", []))
        return used

    def staging(self) -> Path:
        """A private folder to write the next adapter into before `publish`."""
        return Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))

    def publish(self, staged: Path, metadata: dict[str, Any]) -> str:
        """Move a staged adapter into place as the next version, then point LATEST at it.

        Readers see either the old version or the complete new one: the folder appears by
        one rename and LATEST is replaced by another.
        """
        versions = self.versions()
        name = f"v{(int(versions[-1][1:]) if versions else 0) + 1:04d}"
        (staged / META).write_text(json.dumps({"version": name, **metadata}, indent=2, default=str))
        os.replace(staged, self.root / name)
        tmp = self.root / f".{POINTER}.{os.getpid()}"
        tmp.write_text(name + "\n")
        os.replace(tmp, self.root / POINTER)
        return name

    def discard(self, staged: Path) -> None:
        shutil.rmtree(staged, ignore_errors=True)
