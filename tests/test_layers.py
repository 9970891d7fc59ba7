"""The package layers stay one way (arena <- agents <- learner), no module imports itself through
a cycle, and the arena runs (bot seats included) on an install without the learning stack."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"arena": "maro.arena", "agents": "maro.agents", "learner": "maro.learner"}
LAYER = {"arena": 0, "agents": 1, "learner": 2}
GENERATED = "v1"  # protoc output: imports only its own modules and grpc


def _modules() -> dict[str, Path]:
    found = {}
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            if GENERATED in rel.parts:
                continue
            found[".".join([package, *(p for p in rel.parts if p != "__init__")])] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Every module's imports of our own modules: top level, inside functions and under
    TYPE_CHECKING alike (a lazy import is still a dependency)."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
                targets.add(base)
                targets.update(f"{base}.{a.name}" for a in node.names)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_layers_import_only_downwards():
    upward = [f"{a} -> {b}" for a, targets in import_graph().items() for b in sorted(targets)
              if LAYER[b.split(".")[1]] > LAYER[a.split(".")[1]]]
    assert upward == [], "arena imports nothing from agents or learner, agents nothing from learner"


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_the_checks_can_fail():
    graph = {"maro.arena.a": {"maro.arena.b"}, "maro.arena.b": {"maro.arena.a"}, "maro.arena.c": set()}
    assert cycles(graph) == [["maro.arena.a", "maro.arena.b"]]
    assert "maro.agents.seats" in import_graph()["maro.learner.cli"]


BLOCKED = ("torch", "transformers", "peft", "trl", "accelerate", "litellm", "langgraph", "fastapi", "uvicorn",
           "matplotlib", "pyspiel", "open_spiel")

ARENA_ONLY = textwrap.dedent(f"""
    import asyncio, importlib.abc, sys

    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {BLOCKED!r}:
                raise ImportError(f"{{name}} is not installed on an arena replica")

    sys.meta_path.insert(0, Refuse())
    from typer.testing import CliRunner
    from maro.learner.cli import app

    for args in (["games"], ["arena", "serve", "--help"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, (args, result.output, result.exception)

    from maro.agents.client import create_match, open_channel
    from maro.agents.seats import ServerSeats
    from maro.arena.transport.grpc.server import ArenaConfig, ArenaServer

    async def main(db):
        server = ArenaServer(ArenaConfig(port=0, db=db), seats=ServerSeats())
        await server.start()
        try:
            async with open_channel(server.address) as channel:
                match_id, _ = await create_match(channel, "kuhn_poker-v1", 1, [{{"kind": "bot", "bot": "kuhn-bot"}}] * 2)
            await server.service.wait(match_id)
            assert server.store.get_match(match_id).status == "finished"
        finally:
            await server.stop()

    asyncio.run(main(sys.argv[1]))
    print("arena ok", sorted(m for m in sys.modules if m.split(".")[0] in {BLOCKED!r}))
""")


def test_the_arena_serves_bot_seats_without_the_learning_stack(tmp_path):
    done = subprocess.run([sys.executable, "-c", ARENA_ONLY, str(tmp_path / "m.sqlite")], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "arena ok []" in done.stdout


def test_the_base_install_is_the_arena():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = {d.split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower() for d in project["dependencies"]}
    assert not base & {"torch", "transformers", "peft", "trl", "accelerate", "litellm", "langgraph", "fastapi",
                       "uvicorn", "matplotlib", "open-spiel"}
    extras = project["optional-dependencies"]
    assert "maro-arena[agents]" in extras["learner"] and extras["all"] == ["maro-arena[learner]"]


def test_generated_code_outside_the_arena_only_in_the_grpc_client():
    users = []
    for folder in ("agents", "learner"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                if any(n.startswith("maro.arena.v1") for n in names):
                    users.append(str(path.relative_to(ROOT)))
    assert sorted(set(users)) == ["agents/client.py"]


def test_every_package_folder_is_in_the_install():
    """pyproject's package list names every folder with an __init__.py (a new game's package too):
    a missing one would install without it."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {".".join([package, *init.parent.relative_to(ROOT / folder).parts])
               for folder, package in PACKAGES.items() for init in (ROOT / folder).rglob("__init__.py")}
    assert folders - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert listed - folders == set(), "pyproject.toml lists packages that have no folder"
