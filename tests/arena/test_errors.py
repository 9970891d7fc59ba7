"""One error family: every arena error carries its reason, and each kind has one status code."""

import grpc

from maro.arena import errors
from maro.arena.transport.grpc.convert import MalformedMessage
from maro.arena.transport.grpc.guard import TooManyStreams
from maro.arena.match.inputs import BadInput
from maro.arena.transport.grpc.servicer import status_for


def test_every_error_carries_its_reason_and_maps_to_one_status():
    expected = {
        errors.BadRequest: grpc.StatusCode.INVALID_ARGUMENT, BadInput: grpc.StatusCode.INVALID_ARGUMENT,
        MalformedMessage: grpc.StatusCode.INVALID_ARGUMENT, errors.NotFound: grpc.StatusCode.NOT_FOUND,
        errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
        errors.Conflict: grpc.StatusCode.FAILED_PRECONDITION, errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
        errors.Exhausted: grpc.StatusCode.RESOURCE_EXHAUSTED, TooManyStreams: grpc.StatusCode.RESOURCE_EXHAUSTED,
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
