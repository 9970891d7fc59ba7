"""One person's seat over a WebSocket: the runner's messages as HTML fragments, the page's messages as submissions."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable

from aiohttp import WSMsgType, web

from maro.arena.engine import InvalidAction
from maro.arena.match import inputs
from maro.arena.match.messages import Accepted, MatchEnd, ObservationMsg, Rejection, Submission, TurnPrompt
from maro.arena.present import check_line, view_lines
from maro.arena.store.records import MatchRecord
from maro.arena.transport.limits import RateLimit


class SeatSocket:
    """Pumps one joined seat (`channel` of `runner`) to and from one page's WebSocket until the match
    ends or the page goes; `fragment(macro, **context)` renders the page's HTML fragments."""

    def __init__(self, ws: web.WebSocketResponse, channel, runner, record: MatchRecord,
                 fragment: Callable[..., str], requests_per_second: float):
        self.ws, self.channel, self.runner, self.record = ws, channel, runner, record
        self.fragment = fragment
        self.requests_per_second = requests_per_second
        self.prompt: TurnPrompt | None = None  # the turn the page may answer now

    async def run(self, rejoining: bool) -> None:
        seat = self.channel.seat
        view = self.runner.current_view(seat)
        role = view.role if view is not None else ""
        history = [e.text for e in self.record.events if e.visible_to(seat)]
        await self.ws.send_str(self.fragment("seat_header", record=self.record, seat=seat, role=role)
                               + self.fragment("history", events=history, replace=True)
                               + (self.fragment("facts", lines=view_lines(view.view)) if view is not None else ""))
        # a rejoin finds its pending prompt in the outbox again (`MatchService.join` re-sends it),
        # carrying events the history above already shows
        repeat = rejoining and self.channel.awaiting_turn is not None
        reader = asyncio.create_task(self.read())
        try:
            while not self.ws.closed:
                getter = asyncio.ensure_future(self.channel.outbox.get())
                done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    return
                message = getter.result()
                html = self.render(message, repeat)
                repeat = False
                await self.ws.send_str(html)
                if isinstance(message, MatchEnd):
                    return
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            await self.ws.close()

    def render(self, message, repeat: bool) -> str:
        """The fragments for one message of the runner; `repeat`: a re-sent prompt, whose events
        the page shows already."""
        html = []
        observation = message.observation if isinstance(message, (TurnPrompt, MatchEnd)) else message
        if isinstance(observation, ObservationMsg):
            if observation.events and not repeat:
                html.append(self.fragment("history", events=list(observation.events), replace=False))
            html.append(self.fragment("facts", lines=view_lines(observation.view)))
        if isinstance(message, TurnPrompt):
            self.prompt = message
            html.append(self.fragment("turn", prompt=message, now_ms=_now_ms()))
        elif isinstance(message, Accepted):
            self.prompt = None
            html.append(self.fragment("turn", prompt=None, now_ms=_now_ms()))
        elif isinstance(message, Rejection):
            html.append(self.fragment("notice", text=f"Rejected: {message.reason}", kind="error"))
        elif isinstance(message, MatchEnd):
            self.prompt = None
            names = [s.name for s in self.record.seats]
            html.append(self.fragment("turn", prompt=None, now_ms=_now_ms()))
            html.append(self.fragment("end", end=message, names=names))
        return "".join(html)

    async def read(self) -> None:
        """Page -> runner: `{"turn": N, "action": text}` or `{"turn": N, "text": typed}` (checked
        against the game's format first, as the terminal client does); anything else is refused."""
        limit = RateLimit(self.requests_per_second, burst=max(10.0, 2 * self.requests_per_second))
        async for msg in self.ws:
            if msg.type != WSMsgType.TEXT:
                if msg.type in (WSMsgType.BINARY,):
                    await self.notice("send text messages only")
                continue
            if not limit.allow():
                await close(self.ws, f"more than {self.requests_per_second:g} messages per second; slow down")
                return
            try:
                data = json.loads(msg.data)
                if not isinstance(data, dict):
                    raise ValueError("not an object")
                number = int(data.get("turn", -1))
                text = data.get("action")
                typed = data.get("text")
                if not isinstance(text, str) and not isinstance(typed, str):
                    raise ValueError("it carries neither an action nor a text")
            except (ValueError, TypeError) as exc:
                await self.notice(f"malformed message: {exc}")
                continue
            if isinstance(typed, str):
                text = await self._checked(typed)
                if text is None:
                    continue
            if len(text) > inputs.MAX_ACTION_CHARS:
                await self.notice(f"at most {inputs.MAX_ACTION_CHARS} characters")
                continue
            await self.notice(f"Sent {inputs.shown(text, 200)}", kind="info")
            self.channel.submit(Submission(number, text))

    async def _checked(self, typed: str) -> str | None:
        """A typed line as the game's action, or None once the page is told why not."""
        if len(typed) > inputs.MAX_ACTION_CHARS:
            await self.notice(f"at most {inputs.MAX_ACTION_CHARS} characters")
            return None
        if self.prompt is None:
            await self.notice("it is not your turn")
            return None
        try:
            return check_line(self.runner.game.spec.id, self.prompt.observation.view, typed)
        except InvalidAction as exc:
            await self.notice(f"Not valid: {exc.reason} ({self.prompt.action_format})")
            return None

    async def notice(self, text: str, kind: str = "error") -> None:
        await self.ws.send_str(self.fragment("notice", text=text, kind=kind))


def _now_ms() -> int:
    return int(time.time() * 1000)


async def close(ws: web.WebSocketResponse, reason: str) -> None:
    """Close a socket with a reason the page shows (a socket already gone is fine)."""
    with contextlib.suppress(ConnectionError, RuntimeError):
        await ws.close(code=4000, message=reason[:120].encode())
