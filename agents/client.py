"""The arena's client side: `ArenaClient`, what agents need of an arena whatever the transport, and
its gRPC implementation (`GrpcArenaClient` over the functions below: list games, create matches,
find lobby seats and play one seat of a match with any player object). The only user of the
generated code outside the arena."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc

from maro.arena.match.messages import (
    Accepted,
    Joined,
    MatchEnd,
    ObservationMsg,
    Rejection,
    Submission,
    TurnPrompt,
)
from maro.arena.transport.grpc import convert
from maro.arena.v1 import arena_pb2 as pb
from maro.arena.v1 import arena_pb2_grpc as pb_grpc


class Player(Protocol):
    """Anything that turns a turn prompt (and the last rejection's reason) into a submission.
    A player may also define `observe(message)`: it then gets every observation and the end."""

    async def act(self, prompt: TurnPrompt, rejection: str | None) -> Submission: ...


@dataclass
class SeatResult:
    match_id: str
    seat: int
    role: str
    outcome: float | None = None
    outcomes: tuple[float, ...] = ()
    roles: tuple[str, ...] = ()  # every seat's role where the game reveals them at the end, else "" for others
    reason: str = ""
    turns: int = 0
    accepted: int = 0
    rejections: list[str] = field(default_factory=list)


Connect = Callable[[str], grpc.aio.Channel]
"""Opens a channel to another replica of the same arena, with the caller's credentials."""


def replica_address(exc: grpc.aio.AioRpcError) -> str | None:
    """The address a refused call names for the replica that plays its match, if it names one."""
    if exc.code() != grpc.StatusCode.FAILED_PRECONDITION:
        return None
    for key, value in exc.trailing_metadata() or ():
        if key == convert.REPLICA_ADDRESS and value:
            return value if isinstance(value, str) else value.decode()
    return None


async def play_seat(channel: grpc.aio.Channel, match_id: str, token: str, player: Player,
                    name: str = "", connect: Connect | None = None) -> SeatResult:
    """Join with the seat token and answer every turn until the match ends. With `connect`, a
    match another arena replica plays is followed there (the refusal names it; one hop)."""
    try:
        return await _play_seat(channel, match_id, token, player, name)
    except grpc.aio.AioRpcError as exc:
        if connect is None or (address := replica_address(exc)) is None:
            raise
    async with connect(address) as other:
        return await _play_seat(other, match_id, token, player, name)


async def _play_seat(channel: grpc.aio.Channel, match_id: str, token: str, player: Player, name: str) -> SeatResult:
    stub = pb_grpc.ArenaStub(channel)
    call = stub.Play()
    await call.write(pb.PlayRequest(join=pb.Join(match_id=match_id, seat_token=token, player_name=name)))
    result: SeatResult | None = None
    rejection: str | None = None
    observe = getattr(player, "observe", None) or (lambda _message: None)
    closed: str | None = None  # why a write failed: the arena ended the stream while we answered
    try:
        while True:
            try:
                response = await call.read()
            except grpc.aio.AioRpcError as exc:
                if closed is None:
                    raise
                raise ConnectionError(f"arena ended the stream of match {match_id} while the player was answering "
                                      f"(turn deadline passed?): {closed}; then {exc.code().name}") from exc
            if response is grpc.aio.EOF:
                raise ConnectionError(f"arena closed the stream of match {match_id} before it ended")
            message = convert.from_pb(response)
            match message:
                case Joined():
                    result = SeatResult(match_id, message.seat, message.role)
                case TurnPrompt():
                    result.turns += message.attempt == 0
                    submission = await player.act(message, rejection)
                    rejection = None
                    try:
                        await call.write(convert.submission_to_pb(submission))
                    except grpc.aio.AioRpcError as exc:  # what the arena sent before closing is still read
                        closed = f"{exc.code().name} {exc.details()}"
                case Rejection():
                    rejection = message.reason
                    result.rejections.append(message.reason)
                case Accepted():
                    result.accepted += 1
                case MatchEnd():
                    observe(message)
                    result.outcomes, result.reason, result.roles = message.outcomes, message.reason, message.roles
                    result.outcome = message.outcomes[result.seat] if message.outcomes else None
                    result.role = message.roles[result.seat] if message.roles else result.role
                    await call.done_writing()
                    return result
                case ObservationMsg():
                    observe(message)
    finally:
        call.cancel()


async def list_games(channel: grpc.aio.Channel, timeout: float | None = None) -> list[str]:
    """The ids of the games the arena hosts, and `prefix:*` for each game family it hosts (any
    id `prefix:...` that the family supports)."""
    response = await pb_grpc.ArenaStub(channel).ListGames(pb.ListGamesRequest(), timeout=timeout)
    return [g.id for g in response.games] + [f"{prefix}:*" for prefix in response.families]


async def create_match(channel: grpc.aio.Channel, game_id: str, seed: int, seats: list[dict[str, Any]],
                       params: dict[str, Any] | None = None) -> tuple[str, dict[int, str]]:
    """Create a match; `seats` items are {"kind": "remote"|"open"|"bot"|"model", "bot": name,
    "model": a model name of the arena's registry, "name": display name}."""
    kinds = {"remote": pb.SeatPlan.REMOTE, "bot": pb.SeatPlan.BOT, "open": pb.SeatPlan.OPEN, "model": pb.SeatPlan.MODEL}
    request = pb.CreateMatchRequest(
        game_id=game_id, seed=seed, params_json=json.dumps(params or {}),
        seats=[pb.SeatPlan(kind=kinds[s["kind"]], bot=s.get("bot", ""), name=s.get("name", ""),
                           model=s.get("model", "")) for s in seats])
    response = await pb_grpc.ArenaStub(channel).CreateMatch(request)
    return response.match_id, {t.seat: t.token for t in response.tokens}


KEY_ENV = "MARO_ARENA_KEY"
"""The environment variable our command-line clients read an arena key from."""


def _with_key(details: grpc.aio.ClientCallDetails, key: str) -> grpc.aio.ClientCallDetails:
    metadata = grpc.aio.Metadata(*(details.metadata or ()), ("authorization", f"Bearer {key}"))
    return grpc.aio.ClientCallDetails(details.method, details.timeout, metadata, details.credentials,
                                      details.wait_for_ready)


class _Key:
    """Adds the key to a call. grpc.aio files an interceptor under one call kind only, hence one
    subclass per kind below, all with this body."""

    def __init__(self, key: str):
        self.key = key

    async def _call(self, continuation, client_call_details, request):
        return await continuation(_with_key(client_call_details, self.key), request)


class _KeyUnaryUnary(_Key, grpc.aio.UnaryUnaryClientInterceptor):
    intercept_unary_unary = _Key._call


class _KeyUnaryStream(_Key, grpc.aio.UnaryStreamClientInterceptor):
    intercept_unary_stream = _Key._call


class _KeyStreamStream(_Key, grpc.aio.StreamStreamClientInterceptor):
    intercept_stream_stream = _Key._call


def open_channel(address: str, *, tls_ca: bytes | None = None, tls: bool = False,
                 key: str | None = None) -> grpc.aio.Channel:
    """A channel to the arena; TLS when `tls` or a CA certificate (PEM bytes) is given; with
    `key`, every call carries `authorization: Bearer <key>` (arenas with a key file want it)."""
    options = [("grpc.max_receive_message_length", 16 * 1024 * 1024)]
    interceptors = [_KeyUnaryUnary(key), _KeyUnaryStream(key), _KeyStreamStream(key)] if key else None
    if tls or tls_ca is not None:
        return grpc.aio.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=tls_ca),
                                       options=options, interceptors=interceptors)
    return grpc.aio.insecure_channel(address, options=options, interceptors=interceptors)


async def find_seat(channel: grpc.aio.Channel, game_id: str, *, wait: bool = False, name: str = "",
                    timeout: float | None = None) -> tuple[str, int, str]:
    """Ask the lobby for an open seat; returns (match_id, seat, seat_token)."""
    response = await _find_seat(channel, game_id, wait, name, timeout)
    return response.match_id, response.seat, response.seat_token


async def _find_seat(channel: grpc.aio.Channel, game_id: str, wait: bool, name: str,
                     timeout: float | None) -> pb.SeatAssignment:
    request = pb.FindSeatRequest(game_id=game_id, player_name=name, wait=wait)
    return await pb_grpc.ArenaStub(channel).FindSeat(request, timeout=timeout)


class ArenaClient(Protocol):
    """What an agent needs of an arena: the games it hosts, new matches, lobby seats, and playing
    a seat to the end with a `Player`. The agent runner speaks only this; `GrpcArenaClient` is
    the gRPC implementation."""

    async def list_games(self, timeout: float | None = None) -> list[str]: ...

    async def create_match(self, game_id: str, seed: int, seats: list[dict[str, Any]],
                           params: dict[str, Any] | None = None) -> tuple[str, dict[int, str]]: ...

    async def find_seat(self, game_id: str, *, wait: bool = False, name: str = "",
                        timeout: float | None = None) -> tuple[str, int, str]: ...

    async def play_seat(self, match_id: str, token: str, player: Player, name: str = "") -> SeatResult: ...


@dataclass
class GrpcArenaClient:
    """`ArenaClient` over a gRPC channel (`open_channel`); the channel stays the caller's to close.
    With `connect`, seats of matches that another replica of the arena plays are played there:
    the lobby names that replica, and a refused join names it too. `address` is the channel's
    own, so a seat on the same replica takes no second channel; `aclose` closes the others."""

    channel: grpc.aio.Channel
    connect: Connect | None = None
    address: str = ""
    _owners: OrderedDict[str, str] = field(default_factory=OrderedDict, repr=False)
    _replicas: dict[str, grpc.aio.Channel] = field(default_factory=dict, repr=False)

    async def list_games(self, timeout: float | None = None) -> list[str]:
        return await list_games(self.channel, timeout=timeout)

    async def create_match(self, game_id: str, seed: int, seats: list[dict[str, Any]],
                           params: dict[str, Any] | None = None) -> tuple[str, dict[int, str]]:
        return await create_match(self.channel, game_id, seed, seats, params)

    async def find_seat(self, game_id: str, *, wait: bool = False, name: str = "",
                        timeout: float | None = None) -> tuple[str, int, str]:
        response = await _find_seat(self.channel, game_id, wait, name, timeout)
        if response.address and response.address != self.address:
            self._owners[response.match_id] = response.address
            while len(self._owners) > MAX_REMEMBERED_SEATS:
                self._owners.popitem(last=False)
        return response.match_id, response.seat, response.seat_token

    async def play_seat(self, match_id: str, token: str, player: Player, name: str = "") -> SeatResult:
        owner = self._owners.pop(match_id, None)
        channel = self.channel if owner is None or self.connect is None else self._replica(owner)
        return await play_seat(channel, match_id, token, player, name, self.connect)

    def _replica(self, address: str) -> grpc.aio.Channel:
        if address not in self._replicas:
            if len(self._replicas) >= MAX_REPLICA_CHANNELS:
                raise ConnectionError(f"the lobby named more than {MAX_REPLICA_CHANNELS} arena replicas")
            self._replicas[address] = self.connect(address)
        return self._replicas[address]

    async def aclose(self) -> None:
        """Close the channels to other replicas (not `channel`, the caller's)."""
        channels, self._replicas = list(self._replicas.values()), {}
        for channel in channels:
            await channel.close()


MAX_REMEMBERED_SEATS = 1024
"""Lobby seats whose replica a client remembers until it plays them."""
MAX_REPLICA_CHANNELS = 64
"""Channels to other replicas one client opens at most."""
