"""Where model seats are played: an in-process arena on a loopback port and a model server (the
local one as a child process, or a running one by configuration), started and stopped together.
The self-play loop, the evaluation and the demo all play through one `play_session`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from maro.agents.llm import ModelSettings
from maro.agents.seats import ServerSeats
from maro.arena.match.runner import RunnerConfig
from maro.arena.store.matches import MatchStore
from maro.arena.transport.grpc.server import ArenaConfig, ArenaServer
from maro.learner.serving.client import ModelServerConfig
from maro.learner.serving.config import PREFIX_CACHE_TOKENS
from maro.learner.serving.process import ModelServerProcess


@dataclass(frozen=True)
class PlaySession:
    """A started arena (with bot seats) and the model server its model seats call."""

    arena: ArenaServer
    server: ModelServerConfig
    key: str | None = None
    """The arena key its callers send (an arena listening beyond loopback wants one)."""

    @property
    def address(self) -> str:
        return self.arena.address

    def settings(self, temperature: float, max_tokens: int, model: str | None = None) -> ModelSettings:
        """LiteLLM settings for model seats: `model` (default: the server's newest policy)."""
        return ModelSettings(model=model or self.server.litellm_model(), api_base=self.server.api_base(),
                             api_key=self.server.api_key, temperature=temperature, max_tokens=max_tokens)


@contextlib.asynccontextmanager
async def play_session(run_dir: Path, model_dir: Path, store: MatchStore, adapters_dir: Path, *,
                       model_server: ModelServerConfig | None = None, runner: RunnerConfig | None = None,
                       prefix_cache_tokens: int = PREFIX_CACHE_TOKENS, dtype: str = "float32",
                       console: Console | None = None, host: str = "127.0.0.1") -> AsyncIterator[PlaySession]:
    """Start the model server (unless `model_server` names a running one) serving `adapters_dir`,
    and an arena over `store` listening on `host`; stop both on the way out, whatever happened
    inside. Beyond loopback the arena takes `run_dir/arena-keys.toml` with a new key for the
    session's callers (`PlaySession.key`), so nobody else can play or create matches on it."""
    from maro.arena.auth import add_principal, is_loopback

    console = console or Console()
    keys = key = None
    if not is_loopback(host):
        keys = run_dir / "arena-keys.toml"
        key = add_principal(keys, "selfplay", "admin")
    process = None
    if model_server is None:
        process = ModelServerProcess(model_dir, adapters_dir, run_dir / "model_server.log",
                                     prefix_cache_tokens=prefix_cache_tokens, dtype=dtype)
        with console.status("starting the model server"):
            process.start()
    arena = ArenaServer(ArenaConfig(host=host, port=0, db=store.url, runner=runner or RunnerConfig(), keys=keys),
                        store=store, seats=ServerSeats())
    try:
        await arena.start()
        yield PlaySession(arena, model_server or process.config, key)
    finally:
        await arena.stop()
        if process is not None:
            process.stop()


def progress(label: str, console: Console | None = None) -> Progress:
    """The matches-done bar every batch of play shows."""
    return Progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console)
