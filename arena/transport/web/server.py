"""The arena's web pages: play, watch and replay matches and follow self-play runs in a browser.

A second transport over the same `MatchService` as gRPC, on the arena's own event loop (aiohttp):
pages are rendered here (Jinja2) and updated over WebSockets with HTML fragments that htmx swaps
in, so the browser runs no game logic and nothing is built with a JavaScript toolchain (htmx, its
WebSocket extension and uPlot ship as files in this package). A person's seat is a `SeatChannel`
like a gRPC stream's: the runner checks turns, deadlines and the invalid-action policy for both.

Identities, keys and limits are those of gRPC: without a key file the server is local (loopback
only) and every page is the local operator's; with one, a page asks for a key once and keeps it
in an HttpOnly cookie. Seat tokens live in HttpOnly cookies too (one per match), so a reload or a
dropped connection resumes the seat. Every size a browser can send is bounded: WebSocket
messages, action texts, names, form fields, list lengths; a socket that floods is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

import maro.arena.transport.web.runs as runs
from maro.arena.auth import LOCAL, AuthError, KeyRing, Principal
from maro.arena.engine import GameError, InvalidAction, game_class, seating
from maro.arena.errors import BadRequest, Conflict, Exhausted, NotFound, PermissionDenied, TimedOut, Unavailable
from maro.arena.match import inputs
from maro.arena.match.messages import MatchEnd
from maro.arena.match.seats import SeatFactory, SeatPlan
from maro.arena.match.service import MatchService
from maro.arena.store.records import MatchRecord
from maro.arena.transport.web.seat import SeatSocket, close

log = logging.getLogger("maro.arena.web")

HERE = Path(__file__).parent
MAX_WS_MESSAGE_BYTES = 16 * 1024
"""The largest WebSocket message a page may send (an action of MAX_ACTION_CHARS fits)."""
MAX_FORM_BYTES = 16 * 1024
"""The largest form a page may post."""
MAX_SOCKETS_PER_CLIENT = 64
"""Open WebSockets one client (a principal, or on a local server a client address) may hold."""
MAX_LISTED = 200
"""The most matches, runs or rating rows one page lists."""
JOIN_RETRY_S = 3.0
"""How long a reconnecting page waits for its old socket to let go of the seat."""
SEAT_COOKIE_S = 24 * 3600
KEY_COOKIE = "maro_key"
_STATUS = {BadRequest: 400, InvalidAction: 400, GameError: 404, NotFound: 404, PermissionDenied: 403,
           Conflict: 409, Exhausted: 429, Unavailable: 503, TimedOut: 504, AuthError: 401}


def seat_cookie(match_id: str) -> str:
    return f"maro_seat_{match_id}"


class WebServer:
    """The pages of one arena process. `seats` offers and plays the bot and model opponents (as
    for gRPC's CreateMatch); `runs` is a folder of self-play run folders for the training pages."""

    def __init__(self, service: MatchService, *, keys: KeyRing | None = None, seats: SeatFactory | None = None,
                 runs: Path | None = None, requests_per_second: float = 20.0, secure_cookies: bool = False):
        self.service = service
        self.keys = keys
        self.seats = seats
        self.runs = runs
        self.requests_per_second = requests_per_second
        self.secure_cookies = secure_cookies
        self.sockets: dict[str, int] = {}
        self.templates = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                                            autoescape=True, undefined=jinja2.StrictUndefined)
        self.templates.filters["outcome"] = lambda z: "-" if z is None else f"{z:+.2f}"
        self.app = web.Application(client_max_size=MAX_FORM_BYTES, middlewares=[self._errors])
        self.app.add_routes([
            web.get("/", self.lobby), web.get("/new", self.new_seats), web.post("/matches", self.create),
            web.post("/lobby/take", self.take_seat), web.get("/login", self.login_page),
            web.post("/login", self.login), web.get("/play/{match_id}", self.play_page),
            web.get("/ws/play/{match_id}", self.play_socket), web.get("/watch/{match_id}", self.watch_page),
            web.get("/ws/watch/{match_id}", self.watch_socket), web.get("/matches", self.matches),
            web.get("/replay/{match_id}", self.replay), web.get("/ratings", self.ratings),
            web.get("/runs", self.run_list), web.get("/runs/{name}", self.run_page),
            web.get("/runs/{name}/metrics.json", self.run_metrics),
            web.get("/runs/{name}/replay/{match_id}", self.run_replay),
        ])
        self.app.router.add_static("/static", HERE / "static", name="static", append_version=True)
        self.runner: web.AppRunner | None = None
        self.port: int | None = None

    # --- serving ---------------------------------------------------------------------------
    async def start(self, host: str, port: int, ssl_context=None) -> int:
        self.runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, port, ssl_context=ssl_context)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # the port picked for port 0
        log.info("web pages on http://%s:%d/", host, self.port)
        return self.port

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    @web.middleware
    async def _errors(self, request: web.Request, handler):
        """Domain errors as pages with their status and reason; a missing key asks for one."""
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except AuthError as exc:
            if request.path.startswith("/ws/") or request.path.endswith(".json"):
                raise web.HTTPUnauthorized(text=str(exc)) from None
            return self._page("login.html", request, http_status=401, reason=str(exc), next=request.path_qs)
        except tuple(_STATUS) as exc:
            status = next(code for cls, code in _STATUS.items() if isinstance(exc, cls))
            return self._page("error.html", request, http_status=status, reason=inputs.shown(str(exc), 500))
        except inputs.BadInput as exc:
            return self._page("error.html", request, http_status=400, reason=inputs.shown(str(exc), 500))

    def principal(self, request: web.Request) -> Principal:
        if self.keys is None:
            return LOCAL
        header = request.headers.get("Authorization", "")
        key = header[7:].strip() if header.lower().startswith("bearer ") else request.cookies.get(KEY_COOKIE)
        return self.keys.principal(key)

    def _page(self, template: str, request: web.Request, http_status: int = 200, **context) -> web.Response:
        html = self.templates.get_template(template).render(
            static=lambda path: self.app.router["static"].url_for(filename=path), local=self.keys is None, **context)
        return web.Response(text=html, content_type="text/html", status=http_status, headers={
            "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                                       "connect-src 'self'; img-src 'self' data:",
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"})

    def _fragment(self, macro: str, **context) -> str:
        return getattr(self.templates.get_template("fragments.html").module, macro)(**context)

    def _set_cookie(self, response: web.StreamResponse, name: str, value: str, max_age: int) -> None:
        response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="Strict", path="/",
                            secure=self.secure_cookies)

    async def _form(self, request: web.Request) -> dict[str, str]:
        form = await request.post()
        return {k: str(v)[:inputs.MAX_ACTION_CHARS] for k, v in list(form.items())[:64] if isinstance(v, str)}

    # --- logging in --------------------------------------------------------------------------
    async def login_page(self, request: web.Request) -> web.Response:
        return self._page("login.html", request, reason="", next=_local_path(request.query.get("next", "/")))

    async def login(self, request: web.Request) -> web.StreamResponse:
        form = await self._form(request)
        key, target = form.get("key", "").strip(), _local_path(form.get("next", "/"))
        if self.keys is None:
            raise web.HTTPSeeOther(target)
        try:
            self.keys.principal(key)
        except AuthError as exc:
            return self._page("login.html", request, http_status=401, reason=str(exc), next=target)
        response = web.HTTPSeeOther(target)
        self._set_cookie(response, KEY_COOKIE, key, 30 * 24 * 3600)
        return response

    # --- the lobby and new matches ---------------------------------------------------------
    async def lobby(self, request: web.Request) -> web.Response:
        principal = self.principal(request)
        games = [s.id for s in self.service.list_games()]
        game = inputs.game_id(request.query.get("game", ""), optional=True)
        if game:
            game = game_class(game).spec.id  # an adapted game's canonical id; an unknown one is refused
        else:
            game = games[0] if games else ""
        live = self.service.list_matches(None, "running", None, None, 50)
        open_seats = self.service.open_seats(here=True)  # seats this page can join
        return self._page("lobby.html", request, principal=principal, games=games, game=game,
                          seats=self._seat_form(game, principal), live=live, open_seats=open_seats)

    async def new_seats(self, request: web.Request) -> web.Response:
        """The seat choices of one game (the lobby's form swaps them in when the game changes)."""
        principal = self.principal(request)
        game = inputs.game_id(request.query.get("game", ""))
        players = _int(request.query.get("players"), None)
        return web.Response(text=self._fragment("seat_form", **self._seat_form(game, principal, players)),
                            content_type="text/html")

    def _seat_form(self, game_id: str, principal: Principal, players: int | None = None) -> dict[str, Any]:
        if not game_id:
            return {"game": "", "players": 0, "min_players": 0, "max_players": 0, "choices": [], "roles": []}
        spec = game_class(game_id).spec
        try:
            _, count = seating(game_id, None, players)
        except ValueError:
            _, count = seating(game_id)
        offers = self.seats.offers(game_id, principal) if self.seats is not None else []
        choices = [("open", "another person (an open seat in the lobby)")]
        choices += [(f"bot:{p.bot}", f"bot {p.bot}") if p.kind == "bot" else (f"model:{p.model}", f"model {p.model}")
                    for p in offers]
        return {"game": game_id, "players": count, "min_players": spec.min_players, "max_players": spec.max_players,
                "choices": choices, "roles": list(spec.roles)}

    async def create(self, request: web.Request) -> web.StreamResponse:
        principal = self.principal(request)
        form = await self._form(request)
        game_id = inputs.game_id(form.get("game", ""))
        players = _int(form.get("players"), None)
        try:
            params, count = seating(game_id, None, players)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        if count > inputs.MAX_SEATS:
            raise BadRequest(f"{count} seats; a match has at most {inputs.MAX_SEATS}")
        name = inputs.display_name(form.get("name", ""))[:inputs.MAX_NAME_CHARS]
        mine = _int(form.get("you"), 0)
        if not 0 <= mine < count:
            raise BadRequest(f"your seat must be between 0 and {count - 1}")
        seats = []
        for seat in range(count):
            choice = form.get(f"seat{seat}", "")
            if seat == mine:
                seats.append(SeatPlan("remote", name=name))
            elif choice == "open":
                seats.append(SeatPlan("open"))
            elif choice.startswith("bot:"):
                seats.append(SeatPlan("bot", bot=choice[4:][:inputs.MAX_NAME_CHARS]))
            elif choice.startswith("model:"):
                seats.append(SeatPlan("model", model=choice[6:][:inputs.MAX_NAME_CHARS]))
            else:
                raise BadRequest(f"seat {seat}: choose a bot, a model or another person")
        seed = _int(form.get("seed"), None)
        if seed is None or not 0 <= seed < 2**63:
            seed = secrets.randbelow(2**31)
        match_id, tokens = await self.service.create_match(game_id, seed, params, seats, principal)
        response = web.HTTPSeeOther(f"/play/{match_id}")
        self._set_cookie(response, seat_cookie(match_id), tokens[mine], SEAT_COOKIE_S)
        return response

    async def take_seat(self, request: web.Request) -> web.StreamResponse:
        """The oldest open seat of a live match of the chosen game, as the lobby's FindSeat."""
        self.principal(request)
        form = await self._form(request)
        seat = await self.service.find_seat(inputs.game_id(form.get("game", "")), wait=False, here=True)
        response = web.HTTPSeeOther(f"/play/{seat.match_id}")
        self._set_cookie(response, seat_cookie(seat.match_id), seat.token, SEAT_COOKIE_S)
        return response

    # --- playing -----------------------------------------------------------------------------
    async def play_page(self, request: web.Request) -> web.Response:
        self.principal(request)
        match_id = inputs.match_id(request.match_info["match_id"])
        record = self.service.get_match(match_id)
        holds = bool(request.cookies.get(seat_cookie(match_id)))
        return self._page("play.html", request, record=record, holds=holds)

    async def play_socket(self, request: web.Request) -> web.WebSocketResponse:
        principal = self.principal(request)
        match_id = inputs.match_id(request.match_info["match_id"])
        token = inputs.seat_token(request.cookies.get(seat_cookie(match_id), ""))
        ws = web.WebSocketResponse(max_msg_size=MAX_WS_MESSAGE_BYTES, heartbeat=20.0)
        await ws.prepare(request)
        with self._socket_slot(request, principal) as allowed:
            if not allowed:
                await close(ws, f"more than {MAX_SOCKETS_PER_CLIENT} open pages; close some")
                return ws
            try:
                channel, runner, rejoining, session = await self._join(match_id, token, principal)
            except (BadRequest, NotFound, Conflict, PermissionDenied) as exc:
                await ws.send_str(self._fragment("notice", text=str(exc), kind="error"))
                await close(ws, str(exc))
                return ws
            try:
                seat = SeatSocket(ws, channel, runner, self.service.get_match(match_id), self._fragment,
                                  self.requests_per_second)
                await seat.run(rejoining)
            finally:
                channel.detach(session)
        return ws

    async def _join(self, match_id: str, token: str, principal: Principal):
        """Join the seat; a page reconnecting before its old socket closed waits for it a moment."""
        deadline = time.monotonic() + JOIN_RETRY_S
        while True:
            try:
                return self.service.join(match_id, token, "", principal)
            except Conflict as exc:
                if "already connected" not in str(exc) or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)

    @contextlib.contextmanager
    def _socket_slot(self, request: web.Request, principal: Principal):
        client = principal.name if self.keys is not None else (request.remote or "?")
        held = self.sockets.get(client, 0)
        if held >= MAX_SOCKETS_PER_CLIENT:
            yield False
            return
        self.sockets[client] = held + 1
        try:
            yield True
        finally:
            self.sockets[client] -= 1
            if not self.sockets[client]:
                del self.sockets[client]

    # --- watching and replays ----------------------------------------------------------------
    async def watch_page(self, request: web.Request) -> web.Response:
        self.principal(request)
        record = self.service.get_match(inputs.match_id(request.match_info["match_id"]))
        return self._page("watch.html", request, record=record)

    async def watch_socket(self, request: web.Request) -> web.WebSocketResponse:
        principal = self.principal(request)
        match_id = inputs.match_id(request.match_info["match_id"])
        history, queue, record = self.service.spectate(match_id)
        ws = web.WebSocketResponse(max_msg_size=1024, heartbeat=20.0)
        await ws.prepare(request)
        with self._socket_slot(request, principal) as allowed:
            if not allowed:
                await close(ws, f"more than {MAX_SOCKETS_PER_CLIENT} open pages; close some")
                return ws
            names = [s.name for s in record.seats]
            await ws.send_str(self._fragment("history", events=[e.text for e in history], replace=True))
            if queue is None:
                reveal = record.status == "finished"
                end = MatchEnd(tuple(record.outcome or ()), record.end_reason,
                               tuple(s.role if reveal else "" for s in record.seats))
                await ws.send_str(self._fragment("end", end=end, names=names))
                await ws.close()
                return ws
            closed = asyncio.ensure_future(ws.receive())  # a spectator sends nothing: only its close counts
            try:
                while True:
                    getter = asyncio.ensure_future(queue.get())
                    done, _ = await asyncio.wait({getter, closed}, return_when=asyncio.FIRST_COMPLETED)
                    if getter not in done:
                        getter.cancel()
                        break
                    item = getter.result()
                    if isinstance(item, MatchEnd):
                        await ws.send_str(self._fragment("end", end=item, names=names))
                        break
                    await ws.send_str(self._fragment("history", events=[item.text], replace=False))
            finally:
                closed.cancel()
                await ws.close()
        return ws

    async def matches(self, request: web.Request) -> web.Response:
        self.principal(request)
        game = inputs.game_id(request.query.get("game", ""), optional=True) or None
        status = inputs.status(request.query.get("status", "")) or None
        limit = min(max(_int(request.query.get("limit"), 50) or 50, 1), MAX_LISTED)
        records = self.service.list_matches(game, status, None, None, limit)
        games = [s.id for s in self.service.list_games()]
        return self._page("matches.html", request, records=records, game=game or "", status=status or "",
                          games=games, limit=limit)

    async def replay(self, request: web.Request) -> web.Response:
        self.principal(request)
        record = self.service.get_match(inputs.match_id(request.match_info["match_id"]))
        return self._replay(request, record, f"/replay/{record.match_id}")

    def _replay(self, request: web.Request, record: MatchRecord, base: str) -> web.Response:
        """A finished match as one seat saw it or omniscient; a live one only as spectators see it."""
        over = record.status in ("finished", "aborted")
        which = request.query.get("seat", "public")
        if not over:
            which = "public"
        if which == "all":
            events, seat = list(record.events), None
        elif which.isdigit() and int(which) < len(record.seats):
            seat = int(which)
            events = [e for e in record.events if e.visible_to(seat)]
        else:
            which, seat = "public", None
            events = [e for e in record.events if e.visible_to(None)]
        return self._page("replay.html", request, record=record, events=events, which=which, over=over,
                          base=base, private=[bool(e.private_to) for e in events])

    async def ratings(self, request: web.Request) -> web.Response:
        self.principal(request)
        game = inputs.game_id(request.query.get("game", ""), optional=True) or None
        role = inputs.word(request.query.get("role", ""), "role") or None
        entries = self.service.ratings.table(game, role)[:MAX_LISTED]
        games = [s.id for s in self.service.list_games()]
        return self._page("ratings.html", request, entries=entries, game=game or "", role=role or "", games=games)

    # --- self-play runs ----------------------------------------------------------------------
    def _run_dir(self, name: str) -> Path:
        if self.runs is None:
            raise NotFound("this arena shows no self-play runs (start it with --runs DIR)")
        if not runs.NAME.fullmatch(name) or not runs.is_run(self.runs / name):
            raise NotFound(f"no self-play run {inputs.shown(name)!r} in the runs folder")
        return self.runs / name

    async def run_list(self, request: web.Request) -> web.Response:
        self.principal(request)
        found = []
        if self.runs is not None and self.runs.is_dir():
            for path in sorted(self.runs.iterdir())[:10 * MAX_LISTED]:
                if runs.is_run(path):
                    found.append({"name": path.name, "iterations": len(runs.metrics(path)),
                                  "adapters": len(runs.adapters(path))})
                if len(found) >= MAX_LISTED:
                    break
        return self._page("runs.html", request, runs=found, configured=self.runs is not None)

    async def run_page(self, request: web.Request) -> web.Response:
        self.principal(request)
        path = self._run_dir(request.match_info["name"])
        rows = runs.metrics(path)
        recent = await asyncio.to_thread(runs.recent_matches, path, 30)
        return self._page("run.html", request, name=path.name, rows=rows, adapters=runs.adapters(path),
                          last=rows[-1] if rows else None, matches=recent)

    async def run_metrics(self, request: web.Request) -> web.Response:
        """The run's curves as series: iteration -> valid-action rate, outcome per role and per
        opponent kind, the probe against the bot, loss terms and KL."""
        self.principal(request)
        return web.json_response(runs.curves(runs.metrics(self._run_dir(request.match_info["name"]))))

    async def run_replay(self, request: web.Request) -> web.Response:
        self.principal(request)
        path = self._run_dir(request.match_info["name"])
        match_id = inputs.match_id(request.match_info["match_id"])
        record = await asyncio.to_thread(runs.match, path, match_id)
        if record is None:
            raise NotFound(f"no match {match_id} in run {path.name}")
        return self._replay(request, record, f"/runs/{path.name}/replay/{match_id}")


# --- helpers ---------------------------------------------------------------------------------
def _int(value: str | None, default: int | None) -> int | None:
    try:
        return int(str(value).strip()[:20]) if value not in (None, "") else default
    except ValueError:
        return default


def _local_path(target: str) -> str:
    """A redirect target on this server only: a path, never another host."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"

