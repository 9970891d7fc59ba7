"""Adapter versions on disk: v0001, v0002, ... with a LATEST pointer, published atomically."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

_VERSION = re.compile(r"^v(\d{4,})$")
META = "maro.json"


class AdapterRegistry:
    """The folder the learner publishes into and the model server reads from."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def versions(self) -> list[str]:
        names = [p.name for p in self.root.iterdir() if p.is_dir() and _VERSION.match(p.name)]
        return sorted(names, key=lambda n: int(n[1:]))

    def latest(self) -> str | None:
        pointer = self.root / "LATEST"
        if not pointer.exists():
            return None
        name = pointer.read_text().strip()
        return name if (self.root / name).is_dir() else None

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
        tmp = self.root / f".LATEST.{os.getpid()}"
        tmp.write_text(name + "\n")
        os.replace(tmp, self.root / "LATEST")
        return name

    def discard(self, staged: Path) -> None:
        shutil.rmtree(staged, ignore_errors=True)
