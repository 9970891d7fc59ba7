"""Regenerate the Python code for proto/ into arena/v1 (`maro dev protogen`)."""

from __future__ import annotations

import tempfile
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parent.parent / "proto"
PROTO_FILE = "maro/arena/v1/arena.proto"
OUTPUT_DIR = Path(__file__).resolve().parent / "v1"
GENERATED = ("arena_pb2.py", "arena_pb2.pyi", "arena_pb2_grpc.py")


def generate(out_dir: Path) -> dict[str, bytes]:
    """Run protoc from grpcio-tools; returns the generated files' contents by name."""
    from grpc_tools import protoc

    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "protoc",
            f"-I{PROTO_ROOT}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            str(PROTO_ROOT / PROTO_FILE),
        ]
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed for {PROTO_FILE}")
        produced = Path(tmp) / Path(PROTO_FILE).parent
        files = {name: (produced / name).read_bytes() for name in GENERATED}
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (out_dir / name).write_bytes(data)
    return files


def stale_files() -> list[str]:
    """Names of generated files that differ from what the current .proto produces."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
    return [n for n, data in fresh.items() if not (OUTPUT_DIR / n).exists() or (OUTPUT_DIR / n).read_bytes() != data]


if __name__ == "__main__":
    generate(OUTPUT_DIR)
    print(f"generated {', '.join(GENERATED)} in {OUTPUT_DIR}")
