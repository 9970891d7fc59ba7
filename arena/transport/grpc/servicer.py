"""The gRPC servicer: a few lines per method, converting and calling the match service."""

from __future__ import annotations

import asyncio
import contextlib
import functools

import grpc

from maro.arena.auth import current_principal
from maro.arena.errors import (
    BadRequest,
    Conflict,
    Exhausted,
    Moved,
    NotFound,
    PermissionDenied,
    TimedOut,
    Unavailable,
)
from maro.arena.match import inputs
from maro.arena.match.messages import Joined, MatchEnd, Rejection
from maro.arena.match.service import MatchService, SeatPlan
from maro.arena.transport.grpc import convert
from maro.arena.transport.grpc.guard import Malformed, stream_joined
from maro.arena.transport.limits import RateLimit
from maro.arena.v1 import arena_pb2 as pb
from maro.arena.v1 import arena_pb2_grpc as pb_grpc

_STATUS = {  # every kind of errors.py a caller can cause (BadInput, MalformedMessage, TooManyStreams included)
    BadRequest: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    Conflict: grpc.StatusCode.FAILED_PRECONDITION,
    Moved: grpc.StatusCode.FAILED_PRECONDITION,  # with the owner's address in convert.REPLICA_ADDRESS
    Unavailable: grpc.StatusCode.UNAVAILABLE,
    Exhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    TimedOut: grpc.StatusCode.DEADLINE_EXCEEDED,
}
_SEAT_KINDS = {pb.SeatPlan.REMOTE: "remote", pb.SeatPlan.BOT: "bot", pb.SeatPlan.OPEN: "open", pb.SeatPlan.MODEL: "model"}
_REFUSED = tuple(_STATUS)
MAX_DETAIL_CHARS = 512
"""A status message is cut to this; clients' default metadata limit is 8 KiB."""


def status_for(exc: Exception) -> grpc.StatusCode:
    """The one place where domain errors become gRPC status codes."""
    for kind, code in _STATUS.items():
        if isinstance(exc, kind):
            return code
    return grpc.StatusCode.INTERNAL


def grpc_errors(method):
    """A unary method whose domain errors (errors.py) end the call with their status code and
    reason, so the method body holds only the conversion and the service call."""

    @functools.wraps(method)
    async def wrapper(self, request, context):
        try:
            return await method(self, request, context)
        except _REFUSED as exc:
            await refuse(context, exc)

    return wrapper


def grpc_stream_errors(method):
    """The same for a response-streaming method (an async generator): a domain error raised
    before or between the messages ends the stream with its status code and reason; the
    method's own cleanup runs as soon as the stream ends (closed, not left to the collector)."""

    @functools.wraps(method)
    async def wrapper(self, request, context):
        try:
            async with contextlib.aclosing(method(self, request, context)) as messages:
                async for message in messages:
                    yield message
        except _REFUSED as exc:
            await refuse(context, exc)

    return wrapper


async def refuse(context, exc: Exception):
    detail = str(exc)
    detail = detail if len(detail) <= MAX_DETAIL_CHARS else detail[:MAX_DETAIL_CHARS] + "..."
    if isinstance(exc, Moved):
        await context.abort(status_for(exc), detail, trailing_metadata=((convert.REPLICA_ADDRESS, exc.address),))
    await context.abort(status_for(exc), detail)


def _seat_plan(s: pb.SeatPlan) -> SeatPlan:
    return SeatPlan(kind=_SEAT_KINDS.get(s.kind, "unspecified"), bot=inputs.word(s.bot, "bot"), name=s.name[:1024],
                    model=inputs.word(s.model, "model"), api_base=s.api_base[:1024])


class ArenaServicer(pb_grpc.ArenaServicer):
    def __init__(self, service: MatchService, requests_per_second: float = 20.0, stream_join_timeout_s: float = 5.0):
        self.service = service
        self.requests_per_second = requests_per_second
        self.stream_join_timeout_s = stream_join_timeout_s

    async def ListGames(self, request, context):
        return pb.ListGamesResponse(games=[convert.game_info(s) for s in self.service.list_games()],
                                    families=self.service.game_families())

    @grpc_errors
    async def CreateMatch(self, request, context):
        if len(request.seats) > inputs.MAX_SEATS:
            raise inputs.BadInput(f"{len(request.seats)} seats; a match has at most {inputs.MAX_SEATS}")
        game_id = inputs.game_id(request.game_id)
        params = inputs.params(request.params_json)
        seats = [_seat_plan(s) for s in request.seats]
        match_id, tokens = await self.service.create_match(game_id, request.seed, params, seats, current_principal())
        return pb.CreateMatchResponse(match_id=match_id, tokens=[pb.SeatToken(seat=s, token=t) for s, t in tokens.items()])

    @grpc_errors
    async def GetMatch(self, request, context):
        return convert.match_record_to_pb(self.service.get_match(inputs.match_id(request.match_id)))

    @grpc_errors
    async def ListMatches(self, request, context):
        records = self.service.list_matches(
            inputs.game_id(request.game_id, optional=True) or None, inputs.status(request.status) or None,
            inputs.unix_ms(request.since_unix_ms, "since_unix_ms"),
            inputs.unix_ms(request.until_unix_ms, "until_unix_ms"), request.limit)
        counts = self.service.open_seat_counts([r.match_id for r in records])
        return pb.ListMatchesResponse(matches=[convert.match_summary_to_pb(r, counts[r.match_id]) for r in records])

    @grpc_errors
    async def FindSeat(self, request, context):
        seat = await self.service.find_seat(inputs.game_id(request.game_id), request.wait)
        return pb.SeatAssignment(match_id=seat.match_id, seat=seat.seat, seat_token=seat.token, address=seat.address)

    @grpc_errors
    async def GetRatings(self, request, context):
        game_id, role = inputs.game_id(request.game_id, optional=True), inputs.word(request.role, "role")
        entries = self.service.ratings.table(game_id or None, role or None)
        return pb.GetRatingsResponse(ratings=[convert.rating_to_pb(e) for e in entries])

    @grpc_stream_errors
    async def Spectate(self, request, context):
        history, queue, record = self.service.spectate(inputs.match_id(request.match_id))
        for event in history:
            yield pb.SpectatorEvent(event=convert.event_to_pb(event))
        if queue is None:  # the match is over: its record has the end
            reveal = record.status == "finished"
            yield pb.SpectatorEvent(end=convert.to_pb(MatchEnd(
                tuple(record.outcome or ()), record.end_reason,
                tuple(s.role if reveal else "" for s in record.seats))).end)
            return
        while True:
            item = await queue.get()
            if isinstance(item, MatchEnd):
                yield pb.SpectatorEvent(end=convert.to_pb(item).end)
                return
            yield pb.SpectatorEvent(event=convert.event_to_pb(item))

    @grpc_stream_errors
    async def Play(self, request_iterator, context):
        try:
            first = await asyncio.wait_for(anext(request_iterator, None), self.stream_join_timeout_s)
        except TimeoutError:
            raise TimedOut(f"no join within {self.stream_join_timeout_s:g}s of opening the stream") from None
        if isinstance(first, Malformed):
            raise BadRequest(f"malformed protobuf message: {first.error}")
        if first is None or first.WhichOneof("msg") != "join":
            raise BadRequest("the first message of Play must be a join")
        join = first.join
        stream_joined()
        channel, runner, rejoining, session = self.service.join(
            inputs.match_id(join.match_id), inputs.seat_token(join.seat_token), join.player_name[:1024],
            current_principal())
        seat = channel.seat
        role = runner.game.observe(runner.state, seat).role if runner.state is not None else ""
        yield convert.to_pb(Joined(runner.match_id, seat, role, runner.game.spec.id, len(runner.channels)))
        if rejoining and (view := runner.current_view(seat)) is not None:
            yield convert.to_pb(view)
        limit = RateLimit(self.requests_per_second, burst=max(10.0, 2 * self.requests_per_second))
        reader = asyncio.create_task(_pump_requests(request_iterator, channel, limit))
        try:
            while True:
                message = await channel.outbox.get()
                if message is FLOODED:
                    raise Exhausted(f"more than {self.requests_per_second:g} requests per second; slow down")
                yield convert.to_pb(message)
                if isinstance(message, MatchEnd):
                    break
        finally:
            reader.cancel()
            channel.detach(session)


FLOODED = object()
"""Put in a seat's outbox by its request reader when the client floods: the stream's writer
ends the call on it. The writer thus waits on the outbox alone, with no task per message."""


async def _pump_requests(request_iterator, channel, limit: RateLimit) -> None:
    """Stream -> runner: actions go to the seat's channel, anything else is refused with a reason.
    A client over its rate gets FLOODED in its outbox; one that stops writing, nothing."""
    with contextlib.suppress(grpc.aio.AioRpcError):
        async for request in request_iterator:
            if not limit.allow():
                await _drain(request_iterator, FLOOD_GRACE_S)
                channel.outbox.put_nowait(FLOODED)
                return
            kind = request.WhichOneof("msg")
            if kind == "action":
                try:
                    channel.submit(convert.submission_from_pb(request.action))
                except (convert.MalformedMessage, inputs.BadInput) as exc:
                    channel.send(Rejection(request.action.turn, f"malformed action: {exc}", 0))
            elif kind == "join":
                channel.send(Rejection(-1, "already joined; send actions on this stream", 0))
            elif isinstance(request, Malformed):
                channel.send(Rejection(-1, f"malformed protobuf message: {request.error}", 0))
            else:
                channel.send(Rejection(-1, "malformed request: PlayRequest carries neither join nor action", 0))


FLOOD_GRACE_S = 0.5


async def _drain(request_iterator, seconds: float) -> None:
    """Discard what a flooding client still sends for a moment before the stream is closed, so
    its writes in flight don't fail and it reads the RESOURCE_EXHAUSTED status."""
    deadline = asyncio.get_running_loop().time() + seconds
    with contextlib.suppress(TimeoutError, StopAsyncIteration, grpc.aio.AioRpcError):
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            await asyncio.wait_for(anext(request_iterator), left)
