"""Every error the arena reports, in one family. Each carries `reason`, written for whoever
caused it (a player, a client, an operator); the transports map the kinds to their status codes in
one table each (`arena/transport/grpc/servicer.py: status_for` for gRPC).

    ArenaError
    |- GameError            the rules refuse (the runner turns these into rejections or forfeits)
    |  |- InvalidAction, NotYourTurn, MatchOver, UnknownGame
    |- BadRequest           a request that cannot be served as sent (BadInput, MalformedMessage)
    |- NotFound, PermissionDenied, Conflict, Unavailable
    |- Moved                a live match another arena replica plays; `address` is where
    |- Exhausted            a caller over one of its limits (TooManyStreams)
    |- TimedOut             a caller that did not do in time what the protocol needs next
    |- GameCrashed          an adapted game's own code failed (the runner aborts that match)
"""

from __future__ import annotations


class ArenaError(Exception):
    """Base of the arena's errors; `reason` is the message for the caller."""

    def __init__(self, reason: str = ""):
        super().__init__(reason)
        self.reason = reason


class GameError(ArenaError):
    """Base of the engine's domain errors."""


class InvalidAction(GameError):
    """An action that the rules refuse; `reason` is written for the player."""


class NotYourTurn(GameError):
    """A seat acted while it was not among the acting seats."""


class MatchOver(GameError):
    """An action arrived after the match ended."""


class UnknownGame(GameError):
    """No game is registered under that id."""


class BadRequest(ArenaError):
    """A request that cannot be served as sent."""


class NotFound(ArenaError):
    """No such match, game or seat."""


class PermissionDenied(ArenaError):
    """The caller may not do this (a wrong seat token, a role without the right)."""


class Conflict(ArenaError):
    """Not in the current state (a finished match, a seat already connected)."""


class Unavailable(ArenaError):
    """Nothing to hand out now (no open seat); worth retrying later."""


class Moved(ArenaError):
    """The match is live on another arena replica sharing the store; `address` reaches it."""

    def __init__(self, reason: str, address: str):
        super().__init__(reason)
        self.address = address


class Exhausted(ArenaError):
    """A caller over one of its limits (live matches it created, streams it holds)."""


class TimedOut(ArenaError):
    """A caller that did not do in time what the protocol needs next (join a stream it opened)."""


class GameCrashed(ArenaError):
    """An adapted game's own code (a TextArena environment) raised: its match is aborted with this
    reason; the server and the other matches go on."""
