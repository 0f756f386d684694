"""`rugpt-tui serve`: the app in a browser through textual-serve. A websocket client and a real
headless Chromium open the served app, see the demo load and type into the Tokenize pane;
closing the tab ends its app process; the server listens on the loopback unless told."""

from __future__ import annotations

import asyncio
import json
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
    assert f"ssh -N -L {served.port}:localhost:{served.port}" in served.output()   # from a laptop


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
            async with client.ws_connect(served.ws_url(), headers=served.headers()) as ws:
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
            # the printed address: its token becomes a cookie, the page loses it
            await browser.call("Page.navigate", url=f"{served.url}/?token={served.token}")

            async def model_line() -> str:
                text = await browser.screen_text()
                return text if "params" in text and STATS.search(text) else ""
            text = await wait_until(model_line, 120, every=0.3)
            assert text, await browser.screen_text()
            assert await browser.evaluate("location.href") == f"{served.url}/"
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


async def start_a_run(ws) -> None:
    """In the tab: once the model is there, F4 and F8 (the demo's texts, saved to a folder of
    the run's own), until the run's first step shows."""
    seen = bytearray()
    assert await read_until(ws, seen, b"params", 120)
    await ws.send_json(["stdin", "\x1bOS"])      # F4: the Train pane
    await asyncio.sleep(1)
    await ws.send_json(["stdin", "\x1b[19~"])    # F8: fine-tune
    assert await read_until(ws, seen, b"step ", 60), seen[-800:]


def test_a_tab_closed_while_a_run_trains_is_a_hangup_the_run_ends_and_is_recorded(served, workspace_home):
    async def session() -> None:
        async with aiohttp.ClientSession() as client:
            async with client.ws_connect(served.ws_url(120, 40), headers=served.headers()) as ws:
                await start_a_run(ws)
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


# -- only the token's holder gets in ------------------------------------------------------

async def status_of(session, url: str, **kwargs) -> int:
    async with session.get(url, allow_redirects=False, **kwargs) as answer:
        return answer.status


def test_without_the_token_nothing_answers_and_no_app_starts(served):
    """No token, a wrong one, a foreign Host (DNS rebinding): 403 for the page, its scripts and
    the websocket, and no app process. The printed address swaps the token for a cookie
    (HttpOnly, SameSite=Strict) and sends the browser to the page without it."""
    async def session() -> None:
        async with aiohttp.ClientSession() as client:
            for path in ("/", "/static/js/textual.js", "/ws?width=80&height=24", "/download/x"):
                assert await status_of(client, served.url + path) == 403, path
                assert await status_of(client, served.url + path + ("&" if "?" in path else "?")
                                       + "token=" + "x" * len(served.token)) == 403, path
            rebound = {**served.headers(), "Host": f"evil.example:{served.port}"}
            assert await status_of(client, served.url + "/", headers=rebound) == 403
            async with client.get(f"{served.url}/?token={served.token}&fontsize=14",
                                  allow_redirects=False) as answer:
                assert answer.status == 302 and answer.headers["Location"] == "/?fontsize=14"
                cookie = answer.headers["Set-Cookie"]
            assert f"rugpt_tui_{served.port}={served.token}" in cookie
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
            assert await status_of(client, served.url + "/", headers=served.headers()) == 200
            assert await status_of(client, served.url + "/static/js/textual.js",
                                   headers=served.headers()) == 200
        assert served.app_processes() == []

    asyncio.run(session())


def test_a_page_from_another_origin_gets_no_app_even_with_the_cookie(served):
    """A websocket handshake is not bound by the same-origin policy: a page elsewhere that
    opens it sends the user's cookie along. Its Origin is not the page's own: 403, no app."""
    async def session() -> None:
        async with aiohttp.ClientSession() as client:
            for origin in ("http://evil.example", f"http://localhost:{served.port + 1}",
                           f"https://127.0.0.1:{served.port}", "null"):
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await client.ws_connect(served.ws_url(), headers=served.headers(origin))
                assert refused.value.status == 403, origin
            headers = served.headers()
            del headers["Origin"]
            with pytest.raises(aiohttp.WSServerHandshakeError):
                await client.ws_connect(served.ws_url(), headers=headers)
        assert served.app_processes() == []

    asyncio.run(session())


def test_the_token_is_in_no_process_listing(served):
    """Neither the server's nor an app's command line or environment holds the token."""
    async def session() -> None:
        async with aiohttp.ClientSession() as client:
            async with client.ws_connect(served.ws_url(), headers=served.headers()) as ws:
                seen = bytearray()
                assert await read_until(ws, seen, b"Tokenize F2", 60)
                pids = [served.proc.pid, *served.app_processes()]
                assert len(pids) == 2
                for pid in pids:
                    for part in ("cmdline", "environ"):
                        text = open(f"/proc/{pid}/{part}", "rb").read()
                        assert served.token.encode() not in text, (pid, part)

    asyncio.run(session())


def test_a_token_file_fixes_the_token_only_when_no_one_else_can_read_it(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("my-own-token-for-scripts-0123\nignored\n", encoding="utf-8")
    token_file.chmod(0o644)
    refused = subprocess.run([sys.executable, "-m", "tui.cli", "serve", "--token-file", str(token_file)],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "other accounts may read it" in refused.stderr and "chmod 600" in refused.stderr
    token_file.chmod(0o600)
    server = Served("--token-file", str(token_file))
    try:
        assert server.token == "my-own-token-for-scripts-0123"
        assert server.token not in open(f"/proc/{server.proc.pid}/cmdline", "rb").read().decode()
    finally:
        server.close()


def test_a_unix_socket_only_its_owner_can_open(tmp_path):
    """`--socket`: the socket is mode 600 in a folder of mode 700 (made so when missing); a
    folder open to other accounts is refused; the app answers through the socket."""
    open_folder = tmp_path / "shared"
    open_folder.mkdir(mode=0o755)
    open_folder.chmod(0o755)
    refused = subprocess.run([sys.executable, "-m", "tui.cli", "serve", "--socket",
                              str(open_folder / "app.sock")], cwd=ROOT, capture_output=True,
                             text=True, timeout=60)
    assert refused.returncode == 2 and "open to other accounts" in refused.stderr
    path = tmp_path / "private" / "app.sock"
    server = Served("--socket", str(path))
    try:
        assert oct(path.stat().st_mode & 0o777) == oct(0o600)
        assert oct(path.parent.stat().st_mode & 0o777) == oct(0o700)
        assert f"ssh -N -L {server.port}:{path}" in server.output()
        assert not server.listening()   # no TCP port at all

        async def session() -> None:
            connector = aiohttp.UnixConnector(path=str(path))
            async with aiohttp.ClientSession(connector=connector) as client:
                base = f"http://localhost:{server.port}"   # as the tunnel's browser asks
                assert await status_of(client, base + "/") == 403
                headers = {"Cookie": f"rugpt_tui_{server.port}={server.token}", "Origin": base}
                assert await status_of(client, base + "/", headers=headers) == 200
                async with client.ws_connect(f"ws://localhost:{server.port}/ws", headers=headers) as ws:
                    assert await read_until(ws, bytearray(), b"Tokenize F2", 60)
        asyncio.run(session())
    finally:
        server.close()


def test_a_host_other_than_the_loopback_says_what_it_exposes():
    server = Served("--host", "0.0.0.0")
    try:
        assert "warning: listening on 0.0.0.0" in server.output()
        assert "gets a shell as you" in server.output()
    finally:
        server.close()


def test_a_tab_over_the_limit_gets_one_line_and_no_app():
    server = Served("--max-tabs", "1")
    try:
        async def session() -> None:
            async with aiohttp.ClientSession() as client:
                async with client.ws_connect(server.ws_url(), headers=server.headers()) as ws:
                    assert await read_until(ws, bytearray(), b"Tokenize F2", 60)
                    assert await status_of(client, server.url + "/", headers=server.headers()) == 503
                    async with client.ws_connect(server.ws_url(), headers=server.headers()) as extra:
                        seen = bytearray()
                        assert await read_until(extra, seen, b"--max-tabs 1", 10)
                        assert b"1 tab already open" in seen
                    assert len(server.app_processes()) == 1
        asyncio.run(session())
    finally:
        server.close()


def test_stopping_the_server_ends_every_app_it_started_within_5_s():
    server = Served()
    try:
        async def session() -> None:
            async with aiohttp.ClientSession() as client:
                tabs = [await client.ws_connect(server.ws_url(), headers=server.headers())
                        for _ in range(2)]
                for ws in tabs:
                    assert await read_until(ws, bytearray(), b"Tokenize F2", 60)
                apps = server.app_processes()
                assert len(apps) == 2
                server.proc.terminate()   # SIGTERM
                started = time.monotonic()
                while (server.proc.poll() is None or any(_running(p) for p in apps)) \
                        and time.monotonic() - started < 5:
                    await asyncio.sleep(0.05)
                assert server.proc.poll() is not None, "the server is still there after 5 s"
                assert not any(_running(p) for p in apps), "an app is still there after 5 s"
                for ws in tabs:
                    await ws.close()
        asyncio.run(session())
    finally:
        server.close()


CLIENT = """
import asyncio, sys, aiohttp
async def main():
    async with aiohttp.ClientSession() as client:
        async with client.ws_connect(sys.argv[1], headers={"Cookie": sys.argv[2], "Origin": sys.argv[3]}) as ws:
            seen = b""
            while b"Tokenize F2" not in seen:
                seen += (await ws.receive()).data
            print("ready", flush=True)
            await asyncio.sleep(3600)
asyncio.run(main())
"""


@pytest.mark.parametrize("how", ["killed", "silent"])
def test_a_client_that_goes_away_without_a_word_ends_its_app_within_10_s(served, how):
    """A browser killed (its connection drops) or silent (stopped, a tunnel cut: nothing
    answers the server's pings): its app process is gone within 10 s."""
    import signal

    headers = served.headers()
    client = subprocess.Popen([sys.executable, "-c", CLIENT, served.ws_url(), headers["Cookie"],
                               headers["Origin"]], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert client.stdout.readline().strip() == "ready"
        apps = served.app_processes()
        assert len(apps) == 1
        client.send_signal(signal.SIGKILL if how == "killed" else signal.SIGSTOP)
        started = time.monotonic()
        while _running(apps[0]) and time.monotonic() - started < 10:
            time.sleep(0.1)
        assert not _running(apps[0]), f"the app of a {how} client outlived it by 10 s"
    finally:
        client.kill()
        client.wait()


def _running(pid: int) -> bool:
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_stopping_the_server_saves_and_stops_a_run_and_records_it(workspace_home):
    """SIGTERM to serve while a tab's run trains: the run saves and stops, as SIGTERM to the
    app does, and is recorded — and nothing is left running after 5 s."""
    server = Served()
    try:
        async def session() -> None:
            async with aiohttp.ClientSession() as client:
                async with client.ws_connect(server.ws_url(120, 40), headers=server.headers()) as ws:
                    await start_a_run(ws)
                    apps = server.app_processes()
                    server.proc.terminate()
                    started = time.monotonic()
                    while any(_running(p) for p in [server.proc.pid, *apps]) \
                            and time.monotonic() - started < 5:
                        await asyncio.sleep(0.05)
                    assert not any(_running(p) for p in [server.proc.pid, *apps])
        asyncio.run(session())
    finally:
        server.close()
    runs = json.loads(subprocess.run([sys.executable, "-m", "tui.cli", "runs", "--json"], cwd=ROOT,
                                     capture_output=True, text=True, timeout=60, check=True).stdout)
    assert runs[0]["status"] == "cancel" and runs[0]["out"], runs[0]
    assert os.path.isfile(os.path.join(runs[0]["out"], "model.safetensors"))
