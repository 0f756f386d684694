"""Helpers for the `serve` tests: a served app on a free port, the app processes it starts,
a websocket client speaking textual-serve's protocol, and a real headless Chromium driven over
the DevTools protocol."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


TOKEN = re.compile(r"/\?token=([A-Za-z0-9_-]+)")


class Served:
    """`rugpt-tui serve --model demo` on a free port (or a Unix socket), output captured, the
    token read from the address it prints; `close()` stops it."""

    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tui.cli", "serve", "--model", "demo", "--port", str(self.port), *args],
            cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while not TOKEN.search(self.output()):   # printed once it listens
            assert self.proc.poll() is None, f"serve ended: {self.output()}"
            assert time.monotonic() < deadline, "serve never listened"
            time.sleep(0.1)
        self.token = TOKEN.search(self.output()).group(1)
        self.url = f"http://127.0.0.1:{self.port}"

    def listening(self) -> bool:
        return any(port == self.port for _, port in listening_sockets())

    def headers(self, origin: str | None = None) -> dict[str, str]:
        """What the page's own websocket sends: its cookie and its origin."""
        return {"Cookie": f"rugpt_tui_{self.port}={self.token}", "Origin": origin or self.url}

    def ws_url(self, width: int = 80, height: int = 24) -> str:
        return f"ws://127.0.0.1:{self.port}/ws?width={width}&height={height}"

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def app_processes(self) -> list[int]:
        """The app processes serve started (its children's children: the shell's command)."""
        return [pid for pid in descendants(self.proc.pid) if is_app(pid)]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def listening_sockets() -> list[tuple[str, int]]:
    """(local address, port) of every listening TCP socket, from /proc/net/tcp and tcp6."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, port = fields[1].split(":")
            if fields[3] == "0A":   # LISTEN
                found.append((address, int(port, 16)))
    return found


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        found += [int(c) for c in children]
        todo += [int(c) for c in children]
    return found


def is_app(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return b"tui.cli" in cmdline and state != "Z"


async def wait_until(check, timeout: float, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = await check()
        if result:
            return result
        await asyncio.sleep(every)
    return await check()


class Browser:
    """Headless Chromium with one page, driven over the DevTools protocol. A script given
    to every new document keeps the page's xterm.js terminal reachable, so a test reads the
    very text the browser shows."""

    # textual-serve's page sets `this.terminal = new Terminal(…)` on its own object: a setter
    # on Object.prototype sees that assignment once and keeps the terminal at window.__term
    KEEP_TERMINAL = """
        Object.defineProperty(Object.prototype, "terminal", {
            configurable: true,
            set(value) {
                window.__term = value;
                Object.defineProperty(this, "terminal", {value, writable: true, configurable: true});
            },
        });"""

    def __init__(self, executable: str) -> None:
        self.profile = tempfile.mkdtemp(prefix="rugpt-tui-chromium-")
        self.proc = subprocess.Popen(
            [executable, "--headless=new", "--no-sandbox", "--disable-gpu",
             "--remote-debugging-port=0", f"--user-data-dir={self.profile}",
             "--window-size=1280,800", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.session: aiohttp.ClientSession | None = None
        self.ws = None
        self.next_id = 0

    async def start(self) -> None:
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            assert self.proc.poll() is None, "chromium ended at start"
            assert time.monotonic() < deadline, "chromium never opened its DevTools port"
            await asyncio.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        self.session = aiohttp.ClientSession()
        async with self.session.get(f"http://127.0.0.1:{port}/json") as answer:
            pages = [t for t in json.loads(await answer.text()) if t["type"] == "page"]
        self.ws = await self.session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0)
        await self.call("Page.enable")
        await self.call("Page.addScriptToEvaluateOnNewDocument", source=self.KEEP_TERMINAL)

    async def call(self, method: str, **params):
        self.next_id += 1
        await self.ws.send_json({"id": self.next_id, "method": method, "params": params})
        while True:
            message = json.loads((await self.ws.receive()).data)
            if message.get("id") == self.next_id:
                assert "error" not in message, message
                return message["result"]

    async def evaluate(self, expression: str):
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    async def screen_text(self) -> str:
        """The terminal's lines as the page shows them ('' until it has them)."""
        return await self.evaluate("""(() => {
            const t = window.__term; if (!t) return "";
            const b = t.buffer.active, lines = [];
            for (let i = 0; i < t.rows; i++) lines.push(b.getLine(b.viewportY + i).translateToString(true));
            return lines.join("\\n"); })()""") or ""

    async def type(self, text: str) -> None:
        """Keys as a user's: into the focused terminal, through the browser's input path."""
        await self.evaluate("window.__term && window.__term.focus()")
        await self.call("Input.insertText", text=text)

    async def screenshot(self) -> bytes:
        return base64.b64decode((await self.call("Page.captureScreenshot", format="png"))["data"])

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


def chromium() -> str | None:
    return next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)


STATS = re.compile(r"(\d+) tokens · (\d+) characters")
