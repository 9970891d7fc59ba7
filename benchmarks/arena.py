"""Arena throughput and turn latency over loopback gRPC, against a bare grpc.aio echo of the same traffic.

    python benchmarks/arena.py [--concurrency 1 10 100] [--seconds 5] [--warmup 1] [--clients 1]
                               [--workers 1 2] [--max-rounds N] [--profile-server FILE.prof --profile-at 100]

Arena load: every match is bargaining-v1 with BOTH seats remote scripted clients (the
`bargaining-bot` policy of maro.agents.bots, run client-side from the view JSON). That stresses
the arena more than a remote seat against a server-side bot: every action crosses the wire,
and the server sends three messages per action (`accepted` and an `observation` to the actor,
a `turn` prompt to the other seat). Each of C concurrency slots plays matches back to back
(CreateMatch, two Play streams, join, play to `end`), so match setup is part of the cost.

Echo baseline: a grpc.aio server with a generic stream-stream handler on raw bytes; per request
(a serialized PlayRequest action) it writes back the three serialized PlayResponse messages the
arena sends per action (accepted, observation, turn prompt, built from a real bargaining state).
C slots each hold one stream and play ping-pong. So both systems move the same messages of the
same sizes; the echo does nothing else.

Metrics, over a measurement window that follows a warm-up:
  actions/s   accepted actions (arena) or request round trips (echo) completed in the window
  p50/p99 ms  turn latency, client side: from writing an action to reading its `accepted`
              (echo: from writing the request to reading the first response frame)
  srv/cli cpu CPU seconds of the server process (of all client processes) per wall second;
              1.0 = one core busy. A Python server is bound near 1.0 whatever the core count.
Server and clients run in separate processes (spawned); each (system, concurrency) pair gets a
fresh server and, for the arena, a fresh SQLite store in a temporary directory. With `--workers
N`, the arena runs as `maro arena serve --workers N` does (N processes sharing the port, one
replica each); every slot holds a connection of its own, which the kernel gives to one worker,
and "srv cpu" sums the workers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import socket
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

import grpc  # noqa: E402

from maro.agents.bots.bargaining import bargaining_policy  # noqa: E402
from maro.arena.v1 import arena_pb2 as pb  # noqa: E402
from maro.arena.v1 import arena_pb2_grpc as pb_grpc  # noqa: E402

ECHO_METHOD = "/maro.bench.Echo/Play"
GAME = "bargaining-v1"


# --- the messages the echo replays --------------------------------------------------------------
def sample_messages() -> tuple[bytes, list[bytes]]:
    """A realistic action and the three responses the arena sends for it, serialized, mid-match."""
    from maro.arena.engine import make_game
    from maro.arena.match.messages import Accepted, ObservationMsg, TurnPrompt
    from maro.arena.transport.grpc import convert

    game = make_game(GAME)
    state, _ = game.init(7)
    for text in ("[Offer: 95]", "[Offer: 60]", "[Offer: 85]"):
        state, events = game.step(state, {sorted(game.acting(state))[0]: text})
    actor, other = 1 - sorted(game.acting(state))[0], sorted(game.acting(state))[0]
    texts = tuple(e.text for e in events)
    observation = ObservationMsg(turn=3, role=game.role(state, actor), view=game.view(state, actor), events=texts)
    prompt = TurnPrompt(
        turn=3, attempt=0, attempts_left=2,
        observation=ObservationMsg(turn=3, role=game.role(state, other), view=game.view(state, other), events=texts),
        legal_actions=game.legal_actions(state, other), action_format=game.spec.action_format,
        deadline_unix_ms=int(time.time() * 1000) + 120_000)
    request = pb.PlayRequest(action=pb.Action(turn=2, text="[Offer: 85]")).SerializeToString()
    responses = [convert.to_pb(m).SerializeToString() for m in (Accepted(2), observation, prompt)]
    return request, responses


# --- servers (each in its own process) ----------------------------------------------------------
def _serve_workers(db_dir: str, port: int, workers: int) -> None:
    """Process entry: the arena as `maro arena serve --workers N`, until SIGTERM."""
    from maro.arena.transport.grpc.workers import serve_workers

    serve_workers(_arena_config(db_dir, port, workers), _bench_seats)


def _bench_seats(_registry):
    from maro.agents.seats import ServerSeats

    return ServerSeats()


def _arena_config(db_dir: str, port: int = 0, workers: int = 1):
    from maro.arena.match.runner import RunnerConfig
    from maro.arena.transport.grpc.server import ArenaConfig

    runner = RunnerConfig(turn_timeout_s=600, join_timeout_s=600)
    # Every slot's matches belong to the one local caller: without a higher cap its per-caller
    # limit (64 live matches) would hold the 100-match level at 64.
    return ArenaConfig(port=port, db=str(Path(db_dir) / "bench.sqlite"), runner=runner,
                       max_live_matches_per_principal=100_000, workers=workers)


def _serve(system: str, db_dir: str, conn, profile_path: str | None) -> None:
    """Process entry: run one server, send its port, stop when the parent says so."""
    profiler = None
    if profile_path:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    asyncio.run(_serve_async(system, db_dir, conn))
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile_path)


async def _serve_async(system: str, db_dir: str, conn) -> None:
    if system == "arena":
        from maro.agents.seats import ServerSeats
        from maro.arena.transport.grpc.server import ArenaServer

        server = ArenaServer(_arena_config(db_dir), seats=ServerSeats())
        port = await server.start()
        stop = server.stop
    else:
        _, responses = sample_messages()
        server = grpc.aio.server()

        async def play(request_iterator, _context):
            async for _request in request_iterator:
                for response in responses:
                    yield response

        handler = grpc.stream_stream_rpc_method_handler(play)  # no (de)serializers: raw bytes
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("maro.bench.Echo", {"Play": handler}),))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()

        async def stop():
            await server.stop(1)
    conn.send(port)
    await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # blocks until "stop"
    await stop()


# --- clients ------------------------------------------------------------------------------------
@dataclass
class Load:
    address: str
    slots: int
    start: float  # time.monotonic() when the window opens (monotonic is system-wide on Linux)
    stop: float
    seed: int
    params_json: str = ""


async def _arena_seat(call, seat_rng: random.Random, samples: list) -> None:
    sent: dict[int, float] = {}
    while True:
        response = await call.read()
        if response is grpc.aio.EOF:
            raise ConnectionError("stream closed before the match ended")
        kind = response.WhichOneof("msg")
        if kind == "turn":
            prompt = response.turn
            text = bargaining_policy(json.loads(prompt.observation.view_json), tuple(prompt.legal_actions), seat_rng)
            sent[prompt.turn] = time.monotonic()
            await call.write(pb.PlayRequest(action=pb.Action(turn=prompt.turn, text=text)))
        elif kind == "accepted":
            now = time.monotonic()
            samples.append((now, now - sent.pop(response.accepted.turn)))
        elif kind == "rejection":
            raise RuntimeError(f"scripted action rejected: {response.rejection.reason}")
        elif kind == "end":
            await call.done_writing()
            return


async def _arena_slot(load: Load, slot: int, samples: list, counts: dict) -> None:
    # A connection of its own (channels to one address otherwise share one), so that workers
    # sharing the port each get their part of the slots.
    async with grpc.aio.insecure_channel(load.address, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
        stub = pb_grpc.ArenaStub(channel)
        seed = load.seed * 100_000 + slot * 1000
        while time.monotonic() < load.stop:
            seed += 1
            created = await stub.CreateMatch(pb.CreateMatchRequest(
                game_id=GAME, seed=seed, params_json=load.params_json, seats=[pb.SeatPlan(kind=pb.SeatPlan.REMOTE)] * 2))
            seats = []
            for token in created.tokens:
                call = stub.Play()
                await call.write(pb.PlayRequest(join=pb.Join(match_id=created.match_id, seat_token=token.token)))
                seats.append(_arena_seat(call, random.Random(f"{seed}:{token.seat}"), samples))
            await asyncio.gather(*seats)
            counts["matches"] += load.start <= time.monotonic() <= load.stop


async def _echo_slot(load: Load, request: bytes, frames: int, samples: list) -> None:
    async with grpc.aio.insecure_channel(load.address) as channel:
        call = channel.stream_stream(ECHO_METHOD)()  # no (de)serializers: raw bytes
        while time.monotonic() < load.stop:
            sent = time.monotonic()
            await call.write(request)
            await call.read()
            now = time.monotonic()
            samples.append((now, now - sent))
            for _ in range(frames - 1):
                await call.read()
        await call.done_writing()


async def _run_load(system: str, load: Load) -> tuple[list, dict]:
    samples: list[tuple[float, float]] = []
    counts = {"matches": 0, "errors": 0}
    if system == "arena":
        slots = [_arena_slot(load, i, samples, counts) for i in range(load.slots)]
    else:
        request, responses = sample_messages()
        slots = [_echo_slot(load, request, len(responses), samples) for _ in range(load.slots)]
    for result in await asyncio.gather(*slots, return_exceptions=True):
        if isinstance(result, BaseException):
            counts["errors"] += 1
            counts.setdefault("first_error", repr(result)[:300])
    return [s for s in samples if load.start <= s[0] <= load.stop], counts


def _client(system: str, load: Load, conn) -> None:
    """Process entry: drive `load.slots` concurrent slots, send back the in-window samples."""
    conn.send(asyncio.run(_run_load(system, load)))


# --- one measurement ----------------------------------------------------------------------------
@dataclass
class Result:
    system: str
    concurrency: int
    workers: int
    actions_per_s: float
    p50_ms: float
    p99_ms: float
    server_cpu: float | None
    client_cpu: float | None
    matches_per_s: float
    errors: int
    first_error: str = ""


def _cpu_seconds(pid: int, with_children: bool = False) -> float | None:
    if with_children:  # a process and its children (the workers of a --workers arena)
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            children = []
        parts = [_cpu_seconds(pid), *(_cpu_seconds(int(c)) for c in children)]
        return None if None in parts else sum(parts)
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    except (OSError, IndexError, ValueError):
        return None


def _start_workers(ctx, db_dir: str, workers: int):
    """The arena's workers in a process of their own; returns it and the shared port once every
    worker holds its lease."""
    from maro.arena.store.matches import MatchStore

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ctx.Process(target=_serve_workers, args=(db_dir, port, workers))
    server.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if Path(db_dir, "bench.sqlite").exists():
            store = MatchStore(Path(db_dir) / "bench.sqlite")
            up = len(store.leases.replicas())
            store.close()
            if up == workers:
                return server, port
        time.sleep(0.2)
    server.terminate()
    raise RuntimeError(f"{workers} workers did not start within 60 s")


def measure(system: str, concurrency: int, args, ctx, profile_path: str | None = None, workers: int = 1) -> Result:
    with tempfile.TemporaryDirectory(prefix="maro-bench-") as db_dir:
        parent, child = ctx.Pipe()
        if workers > 1:
            server, port = _start_workers(ctx, db_dir, workers)
        else:
            server = ctx.Process(target=_serve, args=(system, db_dir, child, profile_path), daemon=True)
            server.start()
            port = parent.recv()
        start = time.monotonic() + 0.5 + args.warmup  # 0.5 s for the client processes to start
        stop = start + args.seconds
        procs = min(args.clients, concurrency)
        clients = []
        for i in range(procs):
            slots = concurrency // procs + (i < concurrency % procs)
            mine, theirs = ctx.Pipe()
            params = json.dumps({"max_rounds": args.max_rounds}) if args.max_rounds else ""
            load = Load(f"127.0.0.1:{port}", slots, start, stop, seed=i + 1, params_json=params)
            p = ctx.Process(target=_client, args=(system, load, theirs), daemon=True)
            p.start()
            clients.append((p, mine))
        time.sleep(max(0.0, start - time.monotonic()))
        cpu0 = [_cpu_seconds(server.pid, workers > 1), *(_cpu_seconds(p.pid) for p, _ in clients)]
        time.sleep(max(0.0, stop - time.monotonic()))
        cpu1 = [_cpu_seconds(server.pid, workers > 1), *(_cpu_seconds(p.pid) for p, _ in clients)]
        busy = [None if a is None or b is None else (b - a) / args.seconds for a, b in zip(cpu0, cpu1)]
        samples, counts = [], {"matches": 0, "errors": 0}
        for p, conn in clients:
            got, c = conn.recv()
            p.join()
            samples += got
            counts["matches"] += c["matches"]
            counts["errors"] += c["errors"]
            counts.setdefault("first_error", c.get("first_error", ""))
        if workers > 1:
            server.terminate()  # SIGTERM: the workers stop as `maro arena serve --workers` does
        else:
            parent.send("stop")
        server.join(30)
    latencies = sorted(s[1] for s in samples) or [float("nan")]
    return Result(
        system=system, concurrency=concurrency, workers=workers, actions_per_s=len(samples) / args.seconds,
        p50_ms=1000 * statistics.median(latencies), p99_ms=1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        server_cpu=busy[0], client_cpu=None if None in busy[1:] else sum(busy[1:]),
        matches_per_s=counts["matches"] / args.seconds, errors=counts["errors"], first_error=counts.get("first_error") or "")


def print_table(results: list[Result], args) -> None:
    request, responses = sample_messages()
    print(f"\nbargaining-v1, both seats remote scripted clients; {args.seconds:g}s window after {args.warmup:g}s warm-up; "
          f"{args.clients} client process(es); {os.cpu_count()} CPUs")
    print(f"messages per action: request {len(request)} B, responses {'+'.join(str(len(r)) for r in responses)} B\n")
    header = f"{'conc':>5} {'system':>10} {'actions/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'srv cpu':>8} {'cli cpu':>8} {'matches/s':>9} {'arena/echo':>10}"
    print(header)
    print("-" * len(header))
    by = {(r.system, r.concurrency, r.workers): r for r in results}
    for c in args.concurrency:
        for system, workers in [("echo", 1)] + [("arena", w) for w in args.workers]:
            r = by[(system, c, workers)]
            name = system if workers == 1 else f"arena x{workers}"
            ratio = f"{r.actions_per_s / by[('echo', c, 1)].actions_per_s:10.2f}" if system == "arena" else ""
            cpu = " ".join(f"{x:8.2f}" if x is not None else f"{'-':>8}" for x in (r.server_cpu, r.client_cpu))
            matches = f"{r.matches_per_s:9.1f}" if system == "arena" else f"{'':>9}"
            print(f"{c:>5} {name:>10} {r.actions_per_s:10.0f} {r.p50_ms:8.2f} {r.p99_ms:8.2f} {cpu} {matches} {ratio}")
    top = max(args.concurrency)
    best = max(args.workers, key=lambda w: by[("arena", top, w)].actions_per_s)
    ratio = by[("arena", top, best)].actions_per_s / by[("echo", top, 1)].actions_per_s
    print(f"\ntarget: arena >= 0.5 x echo at {top} concurrent matches: {ratio:.2f} with {best} worker(s) "
          f"({'met' if ratio >= 0.5 else 'NOT met'})")
    for r in results:
        if r.errors:
            print(f"! {r.system} at {r.concurrency}: {r.errors} slot(s) failed, first: {r.first_error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 10, 100], help="concurrent matches")
    parser.add_argument("--seconds", type=float, default=5.0, help="measurement window per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up before each window")
    parser.add_argument("--clients", type=int, default=1, help="client processes sharing the slots")
    parser.add_argument("--max-rounds", type=int, default=0,
                        help="bargaining max_rounds (default: the game's 4); more rounds = longer matches, "
                             "which separates per-action from per-match cost")
    parser.add_argument("--system", choices=["both", "arena", "echo"], default="both")
    parser.add_argument("--workers", type=int, nargs="+", default=[1],
                        help="arena processes sharing the port (maro arena serve --workers), one row each")
    parser.add_argument("--profile-server", metavar="FILE", help="cProfile the arena server into FILE (.prof)")
    parser.add_argument("--profile-at", type=int, default=100, help="the concurrency to profile at")
    args = parser.parse_args()
    ctx = mp.get_context("spawn")  # grpc does not survive fork
    systems = ["echo", "arena"] if args.system == "both" else [args.system]
    results = []
    for c in args.concurrency:
        for system in systems:
            for workers in args.workers if system == "arena" else [1]:
                results.append(r := measure(system, c, args, ctx, workers=workers))
                print(f"  {system:>5} x{c:<4} workers {workers}: {r.actions_per_s:8.0f} actions/s  "
                      f"p50 {r.p50_ms:.2f} ms  p99 {r.p99_ms:.2f} ms", flush=True)
    if args.system == "both":
        print_table(results, args)
    if args.profile_server:  # a separate run: the profiler slows the server down several-fold
        import pstats

        measure("arena", args.profile_at, args, ctx, args.profile_server)
        print(f"\ncProfile of the arena server at {args.profile_at} concurrent matches ({args.profile_server}):")
        pstats.Stats(args.profile_server).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
