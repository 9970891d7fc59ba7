"""One error family: every arena error carries its reason, and each kind has one status code."""

import grpc

from maro.arena import errors
from maro.arena.match.inputs import BadInput
from maro.arena.transport.grpc.convert import MalformedMessage
from maro.arena.transport.grpc.guard import TooManyStreams
from maro.arena.transport.grpc.servicer import status_for


def test_every_error_carries_its_reason_and_maps_to_one_status():
    expected = {
        errors.BadRequest: grpc.StatusCode.INVALID_ARGUMENT, BadInput: grpc.StatusCode.INVALID_ARGUMENT,
        MalformedMessage: grpc.StatusCode.INVALID_ARGUMENT, errors.NotFound: grpc.StatusCode.NOT_FOUND,
        errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
        errors.Conflict: grpc.StatusCode.FAILED_PRECONDITION, errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
        errors.Exhausted: grpc.StatusCode.RESOURCE_EXHAUSTED, TooManyStreams: grpc.StatusCode.RESOURCE_EXHAUSTED,
        errors.TimedOut: grpc.StatusCode.DEADLINE_EXCEEDED,
    }
    for kind, code in expected.items():
        exc = kind("why it failed")
        assert isinstance(exc, errors.ArenaError) and exc.reason == str(exc) == "why it failed"
        assert status_for(exc) == code, kind
    assert isinstance(BadInput("x"), ValueError) and isinstance(MalformedMessage("x"), ValueError)
    # The rules' errors are turned into rejections or refusals by the runner and the service; one that
    # escaped to the transport would be a bug, and says so as INTERNAL.
    assert status_for(errors.InvalidAction("no")) == grpc.StatusCode.INTERNAL
    assert status_for(RuntimeError("boom")) == grpc.StatusCode.INTERNAL
    assert errors.InvalidAction("bad price").reason == "bad price"


class FakeContext:
    def __init__(self):
        self.aborted = None

    async def abort(self, code, detail):
        self.aborted = (code, detail)
        raise RuntimeError("aborted")  # grpc's abort raises too


async def test_a_streaming_method_ends_with_the_status_and_runs_its_cleanup_at_once():
    import pytest

    from maro.arena.transport.grpc.servicer import grpc_stream_errors

    cleaned = []

    class Service:
        @grpc_stream_errors
        async def Stream(self, request, context):
            try:
                yield 1
                if request == "refuse":
                    raise errors.NotFound("no such match")
                yield 2
            finally:
                cleaned.append(request)

    context = FakeContext()
    with pytest.raises(RuntimeError, match="aborted"):
        _ = [m async for m in Service().Stream("refuse", context)]
    assert context.aborted == (grpc.StatusCode.NOT_FOUND, "no such match") and cleaned == ["refuse"]
    stream = Service().Stream("leave", FakeContext())
    assert await anext(stream) == 1
    await stream.aclose()  # the client went away after the first message
    assert cleaned == ["refuse", "leave"]
