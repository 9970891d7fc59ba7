"""Several arena processes on one host sharing one port (`maro arena serve --workers N`).

A Python arena process is bound near one core by its per-match work, so a host's other cores
take workers of their own. The kernel spreads connections to the shared port over them
(SO_REUSEPORT); each worker is a replica of the arena on the shared store (`<replica>-<k>`)
that clients also reach at a port of its own, which the lobby and redirects name, so a seat of a
match on one worker is played there whichever worker a client reached first. The parent only
starts the workers, restarts one that dies (it aborts its own interrupted matches on start) and
forwards SIGINT/SIGTERM.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import time
from collections.abc import Callable
from multiprocessing.connection import wait
from pathlib import Path

log = logging.getLogger(__name__)

QUICK_EXIT_S = 5.0
"""A worker that exits sooner than this after starting, MAX_QUICK_EXITS times running, stops
the arena (a port in use, a store it cannot open) instead of being restarted again."""
MAX_QUICK_EXITS = 3
STOP_GRACE_S = 30.0


def worker_ids(replica_id: str, workers: int) -> list[str]:
    """The replica ids of a host's workers: stable across restarts, distinct across hosts."""
    base = replica_id or socket.gethostname()
    return [f"{base}-{k}" for k in range(workers)]


def serve_workers(config, build_seats: Callable[[Path | None], object] | None = None,
                  registry: Path | None = None, logs: tuple[int, str] = (logging.WARNING, "text")) -> int:
    """Run `config.workers` arena processes until SIGINT/SIGTERM; returns the exit status. Each
    builds its server-side players with `build_seats(registry)` and logs at `logs` (level, format)."""
    context = multiprocessing.get_context("spawn")
    ids = worker_ids(config.replica_id, config.workers)
    settings = config.model_dump(mode="json")

    def start(k: int):
        process = context.Process(target=_worker, args=(settings, ids[k], k, build_seats, registry, logs),
                                  name=f"maro-arena-{ids[k]}")
        process.start()
        return process, time.monotonic()

    stopping: list[int] = []

    def stop(signum, _frame) -> None:
        stopping.append(signum)
        for process, _ in running.values():
            if process.is_alive():
                process.terminate()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    running = {k: start(k) for k in range(config.workers)}
    quick_exits = dict.fromkeys(running, 0)
    status = 0
    try:
        while running:
            wait([process.sentinel for process, _ in running.values()], timeout=1.0)
            for k, (process, started) in list(running.items()):
                if process.is_alive():
                    continue
                process.join()
                del running[k]
                if stopping:
                    continue
                quick_exits[k] = quick_exits[k] + 1 if time.monotonic() - started < QUICK_EXIT_S else 0
                if quick_exits[k] >= MAX_QUICK_EXITS:
                    print(f"worker {ids[k]} exited {MAX_QUICK_EXITS} times within {QUICK_EXIT_S:g}s of starting "
                          f"(last code {process.exitcode}); stopping the arena", flush=True)
                    status = 1
                    stop(signal.SIGTERM, None)
                    continue
                print(f"worker {ids[k]} exited (code {process.exitcode}); restarting it", flush=True)
                running[k] = start(k)
    finally:
        deadline = time.monotonic() + STOP_GRACE_S
        for process, _ in running.values():
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("arena stopped", flush=True)
    return status


def _worker(settings: dict, replica_id: str, k: int, build_seats, registry: Path | None,
            logs: tuple[int, str]) -> None:
    import asyncio

    from maro.arena.logs import configure
    from maro.arena.transport.grpc.server import ArenaConfig, serve_forever

    configure(*logs)
    config = ArenaConfig.model_validate(settings)
    config = config.model_copy(update={
        "workers": 1, "replica_id": replica_id,
        "metrics_port": None if config.metrics_port is None else config.metrics_port + k,
    })
    seats = build_seats(registry) if build_seats is not None else None
    asyncio.run(serve_forever(config, seats, shared_port=True))
