"""`serve`: the app in a browser, through textual-serve. Each browser tab gets an app process
of its own, started with the options given here; closing the tab ends it (a run in progress
goes on to its end, as after a terminal hangup). Listens on the loopback unless `--host` says
otherwise: the app reads and writes files, and is not for others to reach unasked."""

from __future__ import annotations

import argparse
import shlex
import socket
import sys

from core.base.errors import UserError


def app_command(args: argparse.Namespace) -> str:
    """The shell command textual-serve runs for each tab: this app, with serve's options."""
    command = [sys.executable, "-m", "tui.cli"]
    for flag in ("model", "device", "dtype"):
        value = getattr(args, flag)
        if value is not None:
            command += [f"--{flag}", value]
    for flag in ("trust_remote_code", "lesson"):
        if getattr(args, flag, False):
            command.append("--" + flag.replace("_", "-"))
    return shlex.join(command)


def check_port_free(host: str, port: int) -> None:
    """Fail with one line before the server starts when the address cannot be bound."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UserError(f"--host {host}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise UserError(f"cannot listen on {host}:{port}: {exc.strerror} "
                            "(choose another with --port)") from None


def cmd_serve(args: argparse.Namespace) -> int:
    from textual_serve.server import Server

    check_port_free(args.host, args.port)
    # the page finds its websocket at this address: the host's name when it listens on all
    url_host = socket.getfqdn() if args.host in ("0.0.0.0", "::") else args.host
    url = f"http://{f'[{url_host}]' if ':' in url_host else url_host}:{args.port}"
    local = args.host in ("127.0.0.1", "localhost", "::1")
    print(f"rugpt-tui: serving the app on {url} — one app per browser tab; ctrl+c stops"
          + (f"\n  from another machine: ssh -L {args.port}:localhost:{args.port} <this machine>, "
             f"then open http://localhost:{args.port}" if local else ""), flush=True)
    server = Server(app_command(args), host=args.host, port=args.port, title="rugpt-tui",
                    public_url=url)
    server.serve()
    return 0
