"""The arena in the browser: a second transport over the match service (HTTP pages and WebSockets)."""

from maro.arena.transport.web.server import WebServer

__all__ = ["WebServer"]
