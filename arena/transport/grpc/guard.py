"""Transport guards: who is calling (keys), undecodable messages become INVALID_ARGUMENT, each
client gets a bounded number of streams (those still to join counted apart), and an unexpected
error is logged and answered INTERNAL without its text."""

from __future__ import annotations

import asyncio
import collections
import contextvars
import logging
import sys
from collections.abc import Callable

import grpc
from google.protobuf.message import DecodeError

from maro.arena.auth import LOCAL, AuthError, KeyRing, Principal, bearer_key, set_principal
from maro.arena.errors import Exhausted

log = logging.getLogger(__name__)

OPEN_METHODS = ("/grpc.health.v1.Health/", "/grpc.reflection.")
"""Served without a key: health checks (load balancers, probes) and the schema."""


class Malformed:
    """Stands in for a request whose bytes did not decode, so the handler can answer precisely."""

    def __init__(self, error: str):
        self.error = error

    def WhichOneof(self, _name: str) -> None:  # noqa: N802 (protobuf's spelling)
        return None


def _safe(deserializer):
    def decode(data: bytes):
        try:
            return deserializer(data)
        except (DecodeError, ValueError, RecursionError) as exc:
            return Malformed(str(exc)[:200] or type(exc).__name__)
    return decode


def client_host(peer: str) -> str:
    """`ipv4:127.0.0.1:5555` -> `ipv4:127.0.0.1`: a client is its host, whatever its ports."""
    return peer.rsplit(":", 1)[0] if peer.count(":") >= 2 else peer


class TooManyStreams(Exhausted):
    """A client is over its limit of joined streams (RESOURCE_EXHAUSTED)."""


class _Slot:
    """One streaming call's place in its client's counts: `pending` until the stream has joined
    a seat, then `open` (Spectate streams are open from the start)."""

    def __init__(self, guard: GuardInterceptor, client: str, pending: bool):
        self.guard, self.client, self.pending = guard, client, pending

    def joined(self) -> None:
        if not self.pending:
            return
        guard = self.guard
        if guard.open[self.client] >= guard.max_streams:
            raise TooManyStreams(f"at most {guard.max_streams} joined streams per client; close some first")
        guard.pending[self.client] -= 1
        guard.open[self.client] += 1
        self.pending = False

    def release(self) -> None:
        counts = self.guard.pending if self.pending else self.guard.open
        counts[self.client] -= 1
        if counts[self.client] <= 0:
            del counts[self.client]


_slot: contextvars.ContextVar[_Slot | None] = contextvars.ContextVar("maro_stream_slot", default=None)


def stream_joined() -> None:
    """Called by the Play handler once its stream holds a seat: it moves from the client's
    pending streams to its joined ones (TooManyStreams beyond the limit)."""
    slot = _slot.get()
    if slot is not None:
        slot.joined()


class GuardInterceptor(grpc.aio.ServerInterceptor):
    """Wraps every handler: the caller's key names its principal (UNAUTHENTICATED without one,
    where the server has a key file); malformed requests are refused with INVALID_ARGUMENT; a
    client (its principal, or its host on a keyless local server) may hold `max_streams` joined
    or spectating streams and `max_pending` Play streams that have not joined yet."""

    def __init__(self, max_streams_per_client: int, on_streams: Callable[[int], None] | None = None,
                 keys: KeyRing | None = None, max_pending_per_client: int = 32):
        self.max_streams, self.max_pending = max_streams_per_client, max_pending_per_client
        self.keys = keys
        self.open: collections.Counter[str] = collections.Counter()
        self.pending: collections.Counter[str] = collections.Counter()
        self.on_streams = on_streams or (lambda delta: None)  # e.g. a gauge's inc

    def _principal(self, details) -> Principal | str:
        """The caller's principal, or why it has none."""
        if self.keys is None:
            return LOCAL
        try:
            return self.keys.principal(bearer_key(details.invocation_metadata))
        except AuthError as exc:
            return str(exc)

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if handler is None:
            return None
        if details.method.startswith(OPEN_METHODS):
            return handler
        principal = self._principal(details)
        if handler.request_streaming or handler.response_streaming:
            return self._streaming(handler, principal)
        behavior = handler.unary_unary

        async def unary(request, context):
            if isinstance(principal, str):
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, principal)
            if isinstance(request, Malformed):
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"malformed protobuf message: {request.error}")
            set_principal(principal)
            try:
                return await behavior(request, context)
            except (grpc.aio.AbortError, asyncio.CancelledError):
                raise
            except Exception:
                await _internal(context, details.method)

        return handler._replace(unary_unary=unary, request_deserializer=_safe(handler.request_deserializer))

    def _streaming(self, handler, principal: Principal | str):
        kind = "stream_stream" if handler.request_streaming else "unary_stream"
        behavior = getattr(handler, kind)
        guard = self

        async def limited(request_or_iterator, context):
            if isinstance(principal, str):
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, principal)
            client = client_host(context.peer()) if principal.local else f"principal:{principal.name}"
            pending = handler.request_streaming  # Play streams join first; Spectate streams count at once
            counts, limit = (guard.pending, guard.max_pending) if pending else (guard.open, guard.max_streams)
            if counts[client] >= limit:
                what = "streams waiting to join" if pending else "open streams"
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                    f"at most {limit} {what} per client; close some first")
            if isinstance(request_or_iterator, Malformed):
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                    f"malformed protobuf message: {request_or_iterator.error}")
            counts[client] += 1
            slot = _Slot(guard, client, pending)
            set_principal(principal)
            _slot.set(slot)
            guard.on_streams(1)
            try:
                async for response in behavior(request_or_iterator, context):
                    yield response
            except (grpc.aio.AbortError, asyncio.CancelledError):
                raise
            except Exception:
                await _internal(context, "stream")
            finally:
                slot.release()
                guard.on_streams(-1)

        return handler._replace(**{kind: limited}, request_deserializer=_safe(handler.request_deserializer))


async def _internal(context, method: str) -> None:
    """A bug, not the caller's fault: the detail (which may quote hidden state) goes to the log
    only. gRPC's own errors (a call the client already left) end the call quietly."""
    if type(sys.exc_info()[1]).__module__.startswith("grpc"):
        log.debug("call ended under gRPC in %s", method, exc_info=True)
        return
    log.exception("unexpected error in %s", method)
    try:
        await context.abort(grpc.StatusCode.INTERNAL, "internal error; the arena's log has the details")
    except grpc.aio.AbortError:
        raise
    except Exception:  # noqa: BLE001 - the call is gone already
        return
