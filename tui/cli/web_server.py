"""The web server behind `rugpt-tui serve`: one app process per browser tab, let in only for
the holder of the server's token.

A served app runs as the user who started it — it reads and writes their files and trains on
their GPU — so nothing reaches it but that user:

- Every request needs the token: the printed address carries it (`/?token=…`), and opening it
  swaps it for a cookie (HttpOnly, SameSite=Strict, named for the port) and redirects to the
  page without it, so it stays in neither the address bar nor the history. Anything else —
  the page, its scripts, the websocket — without a valid token or cookie gets 403 and starts
  nothing. Tokens are compared in constant time.
- The websocket's `Origin` must be the page's own (the same scheme, host and port as the
  request's `Host`), so a page from elsewhere cannot use the cookie; the `Host` must name this
  machine as it is served (loopback names, or the `--host` given), which stops DNS rebinding.
  A tunnel may forward another port: the port is not checked, the name is.
- At most `max_tabs` app processes at once; a further tab gets one line instead of another
  model in memory.
- A tab that closes, or a client that goes silent (no answer to the websocket's ping for a few
  seconds: killed, tunnel cut), ends its app process as a terminal hangup does (a run going on
  continues to its end in that process). Stopping the server (SIGINT/SIGTERM) stops every app
  process it started as SIGTERM stops the app — a run saves and stops — and all are gone
  within 5 s (TERM_GRACE_S, then a kill).

The app processes come from textual-serve's `AppService` (its page and scripts too); the
token is never in their command line or environment, nor in the server's.
"""

from __future__ import annotations

import asyncio
import hmac
import signal
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
HEARTBEAT_S = 4.0       # websocket ping interval: a silent client is found within 1.5 × this
TERM_GRACE_S = 3.5      # stopping the server: the apps' time to save and stop after SIGTERM


@dataclass
class ServeSettings:
    command: str                    # the shell command that starts one app, `exec`'d: its pid is the app's
    token: str
    host: str = "127.0.0.1"
    port: int = 8000
    socket_path: Path | None = None
    max_tabs: int = 4
    names: tuple[str, ...] = LOOPBACK_NAMES   # what the Host header may name

    @property
    def cookie(self) -> str:
        """The cookie's name: one per port, as cookies are shared by every port of a host."""
        return f"rugpt_tui_{self.port}"


def host_name(host_header: str) -> str:
    """`name` of a Host header `name`, `name:port`, `[v6]` or `[v6]:port`."""
    if host_header.startswith("["):
        return host_header[1:host_header.find("]")] if "]" in host_header else host_header
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


def same_token(given: str | None, token: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


class TabServer:
    def __init__(self, settings: ServeSettings) -> None:
        from textual_serve.download_manager import DownloadManager

        self.settings = settings
        self.services: set = set()   # the open tabs' app processes (textual-serve's AppService)
        self.sockets: set = set()    # and their websockets
        self.downloads = DownloadManager()   # AppService wants one; the app delivers no files
        self.stopping = asyncio.Event()

    # -- who gets in ---------------------------------------------------------------------

    def allowed(self, request) -> bool:
        """The request carries the token (its query) or the cookie, to a Host of ours."""
        if host_name(request.host).lower() not in self.settings.names:
            return False
        return (same_token(request.cookies.get(self.settings.cookie), self.settings.token)
                or same_token(request.query.get("token"), self.settings.token))

    def same_origin(self, request) -> bool:
        origin = request.headers.get("Origin")
        return origin is not None and origin == f"http://{request.host}"

    @staticmethod
    def refused(why: str):
        from aiohttp import web

        return web.Response(status=403, text=f"rugpt-tui: {why}\n",
                            headers={"Cache-Control": "no-store"})

    # -- the routes ----------------------------------------------------------------------

    def make_app(self):
        from aiohttp import web

        @web.middleware
        async def only_the_token_holder(request, handler):
            if not self.allowed(request):
                return self.refused("open the address serve printed, with its token")
            response = await handler(request)
            response.headers.setdefault("Referrer-Policy", "no-referrer")
            response.headers.setdefault("X-Frame-Options", "DENY")
            return response

        app = web.Application(middlewares=[only_the_token_holder])
        from textual_serve import app_service

        statics = Path(app_service.__file__).parent / "static"
        app.add_routes([web.get("/", self.index), web.get("/ws", self.websocket),
                        web.static("/static", statics, show_index=False)])
        return app

    async def index(self, request):
        from aiohttp import web

        if "token" in request.query:   # the token for a cookie, and the address without it
            rest = {k: v for k, v in request.query.items() if k != "token"}
            response = web.HTTPFound("/" + (f"?{urlencode(rest)}" if rest else ""))
            response.set_cookie(self.settings.cookie, self.settings.token, httponly=True,
                                samesite="Strict", path="/")
            response.headers["Cache-Control"] = "no-store"
            raise response
        if len(self.services) >= self.settings.max_tabs:
            return web.Response(status=503, text=self.full_line() + "\n")
        return web.Response(text=self.page(request), content_type="text/html",
                            headers={"Cache-Control": "no-store"})

    def full_line(self) -> str:
        n = self.settings.max_tabs
        return (f"rugpt-tui: {n} tab{'s' if n != 1 else ''} already open (serve --max-tabs {n}): "
                "close one to open another")

    def page(self, request) -> str:
        """textual-serve's page, its websocket on the address the page was opened at."""
        import jinja2
        from textual_serve import app_service

        templates = Path(app_service.__file__).parent / "templates"
        page = jinja2.Environment(loader=jinja2.FileSystemLoader(templates), autoescape=True)
        font_size = request.query.get("fontsize", "16")
        return page.get_template("app_index.html").render(
            font_size=int(font_size) if font_size.isdigit() else 16,
            app_websocket_url=f"ws://{request.host}/ws",
            config={"static": {"url": "/static/"}}, application={"name": "rugpt-tui"})

    async def websocket(self, request):
        from aiohttp import web
        from textual_serve.app_service import AppService

        if not self.same_origin(request):
            return self.refused("a page from another origin may not open the app")
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S)
        await ws.prepare(request)
        if len(self.services) >= self.settings.max_tabs or self.stopping.is_set():
            await ws.send_bytes((self.full_line() + "\r\n").encode())
            await ws.close()
            return ws
        width = _number(request.query.get("width"), 80)
        height = _number(request.query.get("height"), 24)
        service = AppService(self.settings.command, write_bytes=ws.send_bytes,
                             write_str=ws.send_str, close=ws.close, download_manager=self.downloads)
        self.services.add(service)
        self.sockets.add(ws)
        try:
            await service.start(width, height)
            await self._relay(ws, service)
        finally:
            self.sockets.discard(ws)
            if not self.stopping.is_set():   # the tab is gone: a hangup for its app
                await _quietly(service.stop())
            self.services.discard(service)
        return ws

    async def _relay(self, ws, service) -> None:
        """The browser's keys, size, focus and pings to the app, until the tab goes."""
        from aiohttp import WSMsgType

        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            try:
                kind, data = message.json()
            except (ValueError, TypeError):
                continue
            if kind == "stdin" and isinstance(data, str):
                await service.send_bytes(data.encode("utf-8"))
            elif kind == "resize" and isinstance(data, dict):
                await service.set_terminal_size(_number(data.get("width"), 80),
                                                _number(data.get("height"), 24))
            elif kind == "ping":
                await ws.send_json(["pong", data])
            elif kind == "blur":
                await service.blur()
            elif kind == "focus":
                await service.focus()

    # -- running and stopping ------------------------------------------------------------

    async def run(self, on_listening=None) -> None:
        from aiohttp import web

        runner = web.AppRunner(self.make_app(), handle_signals=False, access_log=None,
                               shutdown_timeout=0.5)
        await runner.setup()
        site: web.BaseSite
        if self.settings.socket_path is not None:
            site = web.UnixSite(runner, str(self.settings.socket_path))
        else:
            site = web.TCPSite(runner, self.settings.host, self.settings.port)
        await site.start()
        if self.settings.socket_path is not None:
            self.settings.socket_path.chmod(0o600)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, self.stopping.set)
        if on_listening is not None:
            on_listening()
        await self.stopping.wait()
        await self.stop_apps()
        await runner.cleanup()

    async def stop_apps(self) -> None:
        """SIGTERM to every app (a run saves and stops, as when the app gets SIGTERM); what
        is left after TERM_GRACE_S is killed; then the tabs are closed."""
        processes = [p for p in (_process_of(s) for s in self.services) if p is not None]
        for process in processes:
            _signal(process, signal.SIGTERM)
        waits = [asyncio.wait_for(p.wait(), TERM_GRACE_S) for p in processes]
        for process, result in zip(processes, await asyncio.gather(*waits, return_exceptions=True)):
            if isinstance(result, BaseException):
                _signal(process, signal.SIGKILL)
                await _quietly(asyncio.wait_for(process.wait(), 1.0))
        for ws in list(self.sockets):
            await _quietly(asyncio.wait_for(ws.close(), 0.5))


def _process_of(service):
    """The app process of an AppService (its `_process`: textual-serve keeps no public handle;
    tests/test_private_names.py)."""
    return service._process


def _signal(process, sig: int) -> None:
    try:
        process.send_signal(sig)
    except ProcessLookupError:
        pass


async def _quietly(awaitable) -> None:
    try:
        await awaitable
    except Exception:   # noqa: BLE001 - a tab or a process already gone
        pass


def _number(value, default: int) -> int:
    try:
        return max(1, min(int(value), 1000))
    except (TypeError, ValueError):
        return default
