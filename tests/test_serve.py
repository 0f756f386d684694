"""`rugpt-tui serve`: the app in a browser through textual-serve. A websocket client and a real
headless Chromium open the served app, see the demo load and type into the Tokenize pane;
closing the tab ends its app process; the server listens on the loopback unless told."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time

import aiohttp
import pytest

from tests.serving import ROOT, STATS, Browser, Served, chromium, listening_sockets, wait_until

LOOPBACK = {"0100007F", "00000000000000000000000001000000"}   # 127.0.0.1, ::1 as /proc shows them


@pytest.fixture
def served():
    server = Served()
    yield server
    server.close()


def test_serve_listens_on_the_loopback_only_by_default(served):
    addresses = {address for address, port in listening_sockets() if port == served.port}
    assert addresses and addresses <= LOOPBACK, addresses
    assert "ssh -L" in served.output()   # says how to reach it from the user's machine


def test_serve_on_a_port_in_use_says_so_in_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "tui.cli", "serve", "--port", str(port)],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and f"127.0.0.1:{port}" in done.stderr
    assert "--port" in done.stderr


async def read_until(ws, seen: bytearray, wanted: bytes, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while wanted not in seen and time.monotonic() < deadline:
        try:
            message = await asyncio.wait_for(ws.receive(), deadline - time.monotonic())
        except TimeoutError:
            break
        if message.type == aiohttp.WSMsgType.BINARY:
            seen += message.data
        elif message.type != aiohttp.WSMsgType.TEXT:
            break
    return wanted in seen


def test_a_websocket_client_sees_the_demo_load_and_answer_keys_and_the_app_ends_with_it(served):
    async def session() -> None:
        async with aiohttp.ClientSession() as client:
            url = f"ws://127.0.0.1:{served.port}/ws?width=80&height=24"
            async with client.ws_connect(url) as ws:
                seen = bytearray()
                assert await read_until(ws, seen, b"Tokenize F2", 60), seen[-500:]
                assert await read_until(ws, seen, b"params", 120), seen[-500:]
                assert len(served.app_processes()) == 1
                await ws.send_json(["stdin", "zebrafish"])
                assert await read_until(ws, seen, b"zebrafish", 30)
        # the tab is closed: its app process ends
        async def gone() -> bool:
            return not served.app_processes()
        assert await wait_until(gone, 15), served.app_processes()

    asyncio.run(session())
    # the app wrote its frames to the browser, none for a terminal on its stderr
    assert "\x1b[?1049h" not in served.output()


def test_the_app_under_each_driver(monkeypatch):
    from tui.process.browser import WEB_DRIVER, ServedDriver
    from tui.process.terminal import HangupAwareDriver
    from tui.shell.app import RuGPTApp
    from tui.shell.launch import driver_class

    monkeypatch.delenv("TEXTUAL_DRIVER", raising=False)
    assert driver_class(RuGPTApp(model="demo")) is HangupAwareDriver
    monkeypatch.setenv("TEXTUAL_DRIVER", WEB_DRIVER)
    assert driver_class(RuGPTApp(model="demo")) is ServedDriver
    monkeypatch.setenv("TEXTUAL_DRIVER", "textual.drivers.headless_driver:HeadlessDriver")
    app = RuGPTApp(model="demo")
    assert driver_class(app) is app.driver_class   # any other: Textual's own choice stands


def test_a_real_browser_opens_the_served_app_and_types_into_the_tokenize_pane(served, tmp_path):
    executable = chromium()
    if executable is None:
        if os.environ.get("RUGPT_TUI_REQUIRE_BROWSER"):
            pytest.fail("no chromium to run the browser test with (RUGPT_TUI_REQUIRE_BROWSER is set)")
        pytest.skip("no chromium here (`apt-get install chromium`; .ci/run installs it)")

    async def session() -> None:
        browser = Browser(executable)
        try:
            await browser.start()
            await browser.call("Page.navigate", url=f"http://127.0.0.1:{served.port}/")

            async def model_line() -> str:
                text = await browser.screen_text()
                return text if "params" in text and STATS.search(text) else ""
            text = await wait_until(model_line, 120, every=0.3)
            assert text, await browser.screen_text()
            tokens, characters = map(int, STATS.search(text).groups())

            await browser.type(" zebrafish")
            async def grown() -> str:
                found = STATS.search(await browser.screen_text())
                return found is not None and int(found.group(2)) == characters + len(" zebrafish")
            assert await wait_until(grown, 30, every=0.2), await browser.screen_text()
            assert int(STATS.search(await browser.screen_text()).group(1)) > tokens

            picture = await browser.screenshot()
            assert picture.startswith(b"\x89PNG") and len(picture) > 20_000   # not a blank page
            (tmp_path / "browser.png").write_bytes(picture)
            if os.environ.get("RUGPT_TUI_SCREENSHOT_TO"):
                with open(os.environ["RUGPT_TUI_SCREENSHOT_TO"], "wb") as out:
                    out.write(picture)
        finally:
            await browser.close()

        async def gone() -> bool:
            return not served.app_processes()
        assert await wait_until(gone, 15), served.app_processes()

    asyncio.run(session())


def test_a_tab_closed_while_a_run_trains_is_a_hangup_the_run_ends_and_is_recorded(served, workspace_home):
    async def session() -> None:
        async with aiohttp.ClientSession() as client:
            url = f"ws://127.0.0.1:{served.port}/ws?width=120&height=40"
            async with client.ws_connect(url) as ws:
                seen = bytearray()
                assert await read_until(ws, seen, b"params", 120)
                await ws.send_json(["stdin", "\x1bOS"])      # F4: the Train pane
                await asyncio.sleep(1)
                await ws.send_json(["stdin", "\x1b[19~"])    # F8: fine-tune on the demo's texts
                assert await read_until(ws, seen, b"step ", 60), seen[-800:]
        await asyncio.sleep(1)

    asyncio.run(session())
    # the tab is gone, the run is not: its process goes on, then ends by itself
    assert served.app_processes(), "the run died with the tab"
    deadline = time.monotonic() + 240
    while served.app_processes() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not served.app_processes()
    runs = subprocess.run([sys.executable, "-m", "tui.cli", "runs", "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=True)
    assert '"status": "done"' in runs.stdout, runs.stdout
