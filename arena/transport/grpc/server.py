"""The arena server: configuration, gRPC server with health, reflection, TLS, limits and metrics."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from pydantic import BaseModel, ConfigDict, Field, model_validator

from maro.arena.auth import KeyRing, is_loopback
from maro.arena.match.runner import RunnerConfig
from maro.arena.match.service import MatchService
from maro.arena.metrics import ArenaMetrics
from maro.arena.store.matches import MatchStore
from maro.arena.transport.grpc.guard import GuardInterceptor
from maro.arena.transport.grpc.servicer import ArenaServicer
from maro.arena.v1 import arena_pb2 as pb
from maro.arena.v1 import arena_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from maro.arena.match.seats import SeatFactory

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Arena"].full_name


class ArenaConfig(BaseModel):
    """How the arena server runs (every field is a `maro arena serve` option)."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    """Address to listen on."""
    port: int = Field(50051, ge=0, le=65535)
    """Port to listen on; 0 picks a free one."""
    db: str = "runs/arena.sqlite"
    """Match store: a SQLite file path or any SQLAlchemy database URL (postgresql+psycopg://...)."""
    max_message_bytes: int = Field(1024 * 1024, gt=0)
    """Largest gRPC message accepted or sent; larger ones get RESOURCE_EXHAUSTED."""
    max_streams_per_client: int = Field(512, gt=0, le=100_000)
    """Joined Play and Spectate streams one client may hold: a principal, or on a keyless local
    server a client host."""
    max_pending_streams_per_client: int = Field(32, gt=0, le=10_000)
    """Play streams that have not joined yet, per client, counted apart from joined ones."""
    stream_join_timeout_s: float = Field(5.0, gt=0, le=300)
    """A Play stream must send its join within this; else it is closed (DEADLINE_EXCEEDED)."""
    max_live_matches_per_principal: int = Field(64, gt=0, le=100_000)
    """Live matches one principal may have created; more get RESOURCE_EXHAUSTED."""
    keys: Path | None = None
    """Key file naming the principals and their roles (`maro arena keys add`). Without one the
    server is local: it listens on loopback only and every caller is the local operator."""
    max_requests_per_second: float = Field(20.0, gt=0, le=10_000)
    """Messages per second one Play stream may send on average; a flood is cut off."""
    tls_cert: Path | None = None
    """PEM certificate chain: with `tls_key`, the server speaks TLS only."""
    tls_key: Path | None = None
    """PEM private key of `tls_cert`."""
    metrics_port: int | None = Field(None, ge=0, le=65535)
    """Serve Prometheus metrics over HTTP on this port."""
    web_port: int | None = Field(None, ge=0, le=65535)
    """Serve the web pages (play, watch, replays, ratings, training runs) on this port, on the
    same host and with the same keys and TLS as gRPC; 0 picks a free one."""
    runs: Path | None = None
    """A folder of self-play run folders the training pages show."""
    replica_id: str = Field("", max_length=128)
    """This server's name in a shared store: on start it aborts only its own interrupted matches.
    Replicas sharing one database need distinct, stable ids."""
    advertise: str = Field("", max_length=256)
    """host:port at which clients reach this replica, handed out by the lobby of every replica
    and in redirects; by default the address it listens on (a wildcard host becomes the address
    this machine's host name resolves to, or the name where that is loopback)."""
    lease_s: float = Field(15.0, ge=1.0, le=3600.0)
    """A replica renews its lease in the shared store every third of this; one whose lease ran
    out is taken for dead and its live matches are aborted by the others. Replicas' clocks must
    agree to well within it."""
    workers: int = Field(1, ge=1, le=64)
    """Arena processes on this host sharing `port` (SO_REUSEPORT spreads connections over them),
    each a replica of its own (`<replica_id>-<k>`) that clients also reach directly at a port of
    its own, where the lobby and redirects send them."""
    runner: RunnerConfig = Field(default_factory=RunnerConfig)

    @model_validator(mode="after")
    def _workers(self) -> ArenaConfig:
        if self.workers > 1 and self.web_port is not None:
            raise ValueError("the web pages play a match on the process that serves the page: serve them from a "
                             "replica of their own (`maro arena serve --web-port` on the same --db), not from workers")
        if self.workers > 1 and self.advertise:
            raise ValueError("workers advertise their own ports; give --advertise without --workers")
        return self

    @model_validator(mode="after")
    def _tls_pair(self) -> ArenaConfig:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("TLS needs both tls_cert and tls_key")
        if self.keys is None and not is_loopback(self.host):
            raise ValueError(f"listening on {self.host} without a key file would let anyone who reaches the port "
                             "create matches and take seats; give --keys FILE (make keys with `maro arena keys add`) "
                             "or listen on 127.0.0.1")
        return self


class ArenaServer:
    """The arena server in this process: start, serve, stop (used by `maro arena serve`, the demo, tests)."""

    def __init__(self, config: ArenaConfig, store: MatchStore | None = None, seats: SeatFactory | None = None,
                 shared_port: bool = False):
        """`seats` plays the `bot` and `model` seats (`maro.agents.seats.ServerSeats`); without
        one the server refuses them and every seat is a remote client's. With `shared_port` (a
        worker of `serve_workers`), `config.port` is shared with other processes and this one is
        also reached, and advertised, at a port of its own."""
        self.config = config
        self.shared_port = shared_port
        self.direct_port: int | None = None
        self.store = store or MatchStore(config.db)
        self.metrics = ArenaMetrics()
        self.keys = KeyRing(config.keys) if config.keys is not None else None
        self.service = MatchService(self.store, config.runner, self.metrics, config.replica_id, seats,
                                    config.max_live_matches_per_principal, config.lease_s)
        limit = config.max_message_bytes
        self.guard = GuardInterceptor(config.max_streams_per_client, self.metrics.streams.inc, self.keys,
                                      config.max_pending_streams_per_client)
        self.server = grpc.aio.server(interceptors=[self.guard], options=[
            ("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", limit),
            ("grpc.so_reuseport", 1 if shared_port else 0)])
        servicer = ArenaServicer(self.service, config.max_requests_per_second, config.stream_join_timeout_s)
        pb_grpc.add_ArenaServicer_to_server(servicer, self.server)
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server)
        self.port: int | None = None
        self.web = None
        if config.web_port is not None:
            from maro.arena.transport.web import WebServer

            self.web = WebServer(self.service, keys=self.keys, seats=seats, runs=config.runs,
                                 requests_per_second=config.max_requests_per_second,
                                 secure_cookies=config.tls_cert is not None)
        self.web_port: int | None = None

    async def start(self) -> int:
        target = f"{self.config.host}:{self.config.port}"
        self.port = self._listen(target)
        if self.shared_port:
            self.direct_port = self._listen(f"{self.config.host}:0")
        if self.config.metrics_port is not None:
            self.metrics.serve(self.config.metrics_port, self.config.host)
        await self.server.start()
        await self.service.start(self.advertised)
        if self.web is not None:
            self.web_port = await self.web.start(self.config.host, self.config.web_port, self._ssl_context())
        for name in ("", SERVICE_NAME):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("arena listening on %s:%d, store %s", self.config.host, self.port, self.store.shown_url)
        return self.port

    def _listen(self, target: str) -> int:
        if self.config.tls_cert is not None:
            credentials = grpc.ssl_server_credentials(
                [(self.config.tls_key.read_bytes(), self.config.tls_cert.read_bytes())])
            port = self.server.add_secure_port(target, credentials)
        else:
            port = self.server.add_insecure_port(target)
        if port == 0:
            raise RuntimeError(f"could not listen on {target}")
        return port

    def _ssl_context(self):
        if self.config.tls_cert is None:
            return None
        import ssl

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.config.tls_cert, self.config.tls_key)
        return context

    @property
    def web_address(self) -> str | None:
        scheme = "https" if self.config.tls_cert is not None else "http"
        return f"{scheme}://{self.config.host}:{self.web_port}/" if self.web_port is not None else None

    @property
    def address(self) -> str:
        return f"{self.config.host}:{self.port}"

    @property
    def advertised(self) -> str:
        """Where clients of other replicas reach this one (`ArenaConfig.advertise`)."""
        if self.config.advertise:
            return self.config.advertise
        host = self.config.host
        if host in ("0.0.0.0", "::", "[::]", ""):
            host = _own_address()
        return f"{host}:{self.direct_port or self.port}"

    async def stop(self, grace: float = 2.0) -> None:
        """Refuse new work, end live matches (recorded as aborted), finish in-flight calls, close."""
        await self.health.enter_graceful_shutdown()
        if self.web is not None:
            await self.web.stop()
        await self.service.shutdown()
        await self.server.stop(grace)
        self.store.close()


def _own_address() -> str:
    """This machine as others reach it: the address its host name resolves to (a container's or a
    pod's own IP), or the host name itself where that is a loopback address (a Debian host's
    127.0.1.1) or does not resolve."""
    name = socket.gethostname()
    try:
        address = socket.gethostbyname(name)
    except OSError:
        return name
    return name if address.startswith("127.") else address


async def serve_forever(config: ArenaConfig, seats: SeatFactory | None = None, shared_port: bool = False) -> None:
    """Run until SIGINT/SIGTERM; live matches are marked aborted on the way out."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # before listening, so no signal finds them missing
        loop.add_signal_handler(sig, stop.set)
    server = ArenaServer(config, seats=seats, shared_port=shared_port)
    await server.start()
    scheme = "tls" if config.tls_cert else "insecure"
    who = f"{len(server.keys)} principals from {config.keys}" if server.keys is not None else "local: no keys, loopback only"
    direct = f", directly at {server.advertised} as replica {config.replica_id!r}" if shared_port else ""
    # One write per line: a host's workers share the terminal.
    print(f"arena listening on {server.address}{direct} ({scheme}; {who}; store: {server.store.shown_url})\n",
          end="", flush=True)
    if server.web_address is not None:
        print(f"web pages on {server.web_address}", flush=True)
    await stop.wait()
    await server.stop()
    print("arena stopped\n", end="", flush=True)
