"""The gRPC transport: a thin servicer over the match service, and the server around it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal

import grpc
from pydantic import BaseModel, ConfigDict, Field

from maro.arena import convert
from maro.arena.messages import Joined, MatchEnd, Rejection
from maro.arena.runner import RunnerConfig
from maro.arena.service import ArenaError, BadRequest, Conflict, MatchService, NotFound, PermissionDenied, SeatPlan
from maro.arena.store import MatchStore
from maro.arena.v1 import arena_pb2 as pb
from maro.arena.v1 import arena_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

_STATUS = {
    BadRequest: grpc.StatusCode.INVALID_ARGUMENT,
    convert.MalformedMessage: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    Conflict: grpc.StatusCode.FAILED_PRECONDITION,
}


def status_for(exc: Exception) -> grpc.StatusCode:
    """The one place where domain errors become gRPC status codes."""
    for kind, code in _STATUS.items():
        if isinstance(exc, kind):
            return code
    return grpc.StatusCode.INTERNAL


class ArenaConfig(BaseModel):
    """How the arena server runs."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    """Address to listen on."""
    port: int = Field(50051, ge=0, le=65535)
    """Port to listen on; 0 picks a free one."""
    db: str = "runs/arena.sqlite"
    """Match store: a SQLite file path or any SQLAlchemy database URL."""
    max_message_bytes: int = Field(4 * 1024 * 1024, gt=0)
    """Largest gRPC message accepted or sent."""
    runner: RunnerConfig = Field(default_factory=RunnerConfig)


_SEAT_KINDS = {pb.SeatPlan.REMOTE: "remote", pb.SeatPlan.BOT: "bot"}


class ArenaServicer(pb_grpc.ArenaServicer):
    def __init__(self, service: MatchService):
        self.service = service

    async def ListGames(self, request, context):
        return pb.ListGamesResponse(games=[convert.game_info(s) for s in self.service.list_games()])

    async def CreateMatch(self, request, context):
        try:
            params = json.loads(request.params_json) if request.params_json else {}
            if not isinstance(params, dict):
                raise BadRequest("params_json must be a JSON object")
            seats = [SeatPlan(kind=_SEAT_KINDS.get(s.kind, "unspecified"), bot=s.bot, name=s.name) for s in request.seats]
            match_id, tokens = await self.service.create_match(request.game_id, request.seed, params, seats)
        except json.JSONDecodeError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"params_json is not JSON: {exc}")
        except ArenaError as exc:
            await context.abort(status_for(exc), str(exc))
        return pb.CreateMatchResponse(match_id=match_id, tokens=[pb.SeatToken(seat=s, token=t) for s, t in tokens.items()])

    async def GetMatch(self, request, context):
        try:
            return convert.match_record_to_pb(self.service.get_match(request.match_id))
        except ArenaError as exc:
            await context.abort(status_for(exc), str(exc))

    async def Play(self, request_iterator, context):
        first = await anext(request_iterator, None)
        if first is None or first.WhichOneof("msg") != "join":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first message of Play must be a join")
        try:
            channel, runner, rejoining = self.service.join(first.join.match_id, first.join.seat_token)
        except ArenaError as exc:
            await context.abort(status_for(exc), str(exc))
        seat = channel.seat
        role = runner.game.observe(runner.state, seat).role if runner.state is not None else ""
        yield convert.to_pb(Joined(runner.match_id, seat, role, runner.game.spec.id, len(runner.channels)))
        if rejoining and (view := runner.current_view(seat)) is not None:
            yield convert.to_pb(view)
        reader = asyncio.create_task(_pump_requests(request_iterator, channel))
        try:
            while True:
                message = await channel.outbox.get()
                yield convert.to_pb(message)
                if isinstance(message, MatchEnd):
                    break
        finally:
            reader.cancel()
            channel.detach()


async def _pump_requests(request_iterator, channel) -> None:
    """Stream -> runner: actions go to the seat's channel, anything else is refused with a reason."""
    with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
        async for request in request_iterator:
            kind = request.WhichOneof("msg")
            if kind == "action":
                try:
                    channel.submit(convert.submission_from_pb(request.action))
                except convert.MalformedMessage as exc:
                    channel.send(Rejection(request.action.turn, f"malformed action: {exc}", 0))
            elif kind == "join":
                channel.send(Rejection(-1, "already joined; send actions on this stream", 0))
            else:
                channel.send(Rejection(-1, "malformed request: PlayRequest carries neither join nor action", 0))


class ArenaServer:
    """The arena server in this process: start, serve, stop (used by `maro arena serve`, the demo, tests)."""

    def __init__(self, config: ArenaConfig, store: MatchStore | None = None):
        self.config = config
        self.store = store or MatchStore(config.db)
        self.service = MatchService(self.store, config.runner)
        limit = config.max_message_bytes
        self.server = grpc.aio.server(options=[
            ("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", limit)])
        pb_grpc.add_ArenaServicer_to_server(ArenaServicer(self.service), self.server)
        self.port: int | None = None

    async def start(self) -> int:
        self.port = self.server.add_insecure_port(f"{self.config.host}:{self.config.port}")
        if self.port == 0:
            raise RuntimeError(f"could not listen on {self.config.host}:{self.config.port}")
        await self.server.start()
        log.info("arena listening on %s:%d, store %s", self.config.host, self.port, self.store.url)
        return self.port

    @property
    def address(self) -> str:
        return f"{self.config.host}:{self.port}"

    async def stop(self, grace: float = 2.0) -> None:
        await self.service.shutdown()
        await self.server.stop(grace)
        self.store.close()


async def serve_forever(config: ArenaConfig) -> None:
    """Run until SIGINT/SIGTERM; live matches are marked aborted on the way out."""
    server = ArenaServer(config)
    await server.start()
    print(f"arena listening on {server.address} (store: {server.store.url})", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()

