"""Transport guards: undecodable messages become INVALID_ARGUMENT, and each client host gets a
bounded number of open streams."""

from __future__ import annotations

import collections
import time

import grpc
from google.protobuf.message import DecodeError


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
        except (DecodeError, ValueError) as exc:
            return Malformed(str(exc) or type(exc).__name__)
    return decode


def client_host(peer: str) -> str:
    """`ipv4:127.0.0.1:5555` -> `ipv4:127.0.0.1`: a client is its host, whatever its ports."""
    return peer.rsplit(":", 1)[0] if peer.count(":") >= 2 else peer


class GuardInterceptor(grpc.aio.ServerInterceptor):
    """Wraps every handler: malformed requests are refused with INVALID_ARGUMENT (never INTERNAL),
    and streaming calls beyond `max_streams_per_client` per client host get RESOURCE_EXHAUSTED."""

    def __init__(self, max_streams_per_client: int, on_streams: callable = None):
        self.max_streams = max_streams_per_client
        self.open: collections.Counter[str] = collections.Counter()
        self.on_streams = on_streams or (lambda delta: None)  # e.g. a gauge's inc

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if handler is None:
            return None
        if handler.request_streaming or handler.response_streaming:
            return self._streaming(handler)
        behavior = handler.unary_unary

        async def unary(request, context):
            if isinstance(request, Malformed):
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"malformed protobuf message: {request.error}")
            return await behavior(request, context)

        return handler._replace(unary_unary=unary, request_deserializer=_safe(handler.request_deserializer))

    def _streaming(self, handler):
        kind = "stream_stream" if handler.request_streaming else "unary_stream"
        behavior = getattr(handler, kind)
        guard = self

        async def limited(request_or_iterator, context):
            host = client_host(context.peer())
            if guard.open[host] >= guard.max_streams:
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                    f"at most {guard.max_streams} open streams per client; close some first")
            if isinstance(request_or_iterator, Malformed):
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                    f"malformed protobuf message: {request_or_iterator.error}")
            guard.open[host] += 1
            guard.on_streams(1)
            try:
                async for response in behavior(request_or_iterator, context):
                    yield response
            finally:
                guard.open[host] -= 1
                guard.on_streams(-1)

        return handler._replace(**{kind: limited}, request_deserializer=_safe(handler.request_deserializer))


class RateLimit:
    """A token bucket: `rate` requests per second on average, bursts up to `burst`."""

    def __init__(self, rate: float, burst: float):
        self.rate, self.burst = rate, burst
        self.tokens, self.at = burst, time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False
