"""`serve`: the app in a browser. Each browser tab gets an app process of its own, started with
the options given here; closing the tab ends it (a run in progress goes on to its end, as after
a terminal hangup). Only the holder of the printed address's token gets in
(tui.cli.web_server). Listens on the loopback unless `--host` says otherwise, or on a Unix
socket only its owner can open (`--socket`): the app reads and writes files, and is not for
others to reach unasked."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shlex
import socket
import stat
import sys
from pathlib import Path

from core.base.errors import UserError
from tui.cli.web_server import LOOPBACK_NAMES, ServeSettings, TabServer

TOKEN_BYTES = 24   # 192 bits


def app_command(args: argparse.Namespace) -> str:
    """The shell command that starts the app for one tab, with serve's options (`exec`: the
    shell becomes the app, so the server signals the app itself)."""
    command = [sys.executable, "-m", "tui.cli"]
    for flag in ("model", "device", "dtype"):
        value = getattr(args, flag)
        if value is not None:
            command += [f"--{flag}", value]
    for flag in ("trust_remote_code", "lesson"):
        if getattr(args, flag, False):
            command.append("--" + flag.replace("_", "-"))
    return "exec " + shlex.join(command)


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


def read_token_file(path: str) -> str:
    """The token in the file's first line; the file must not be readable by other accounts."""
    where = Path(path).expanduser()
    try:
        info = where.stat()
        if not stat.S_ISREG(info.st_mode):
            raise UserError(f"--token-file {path}: not a regular file")
        if info.st_mode & 0o077:
            raise UserError(f"--token-file {path}: other accounts may read it "
                            f"(mode {stat.S_IMODE(info.st_mode):o}); chmod 600 it")
        with open(where, encoding="utf-8") as f:
            token = f.readline().strip()
    except UnicodeDecodeError:
        raise UserError(f"--token-file {path}: not UTF-8 text") from None
    except OSError as exc:
        raise UserError(f"--token-file {path}: cannot read it ({exc.strerror})") from None
    if len(token) < 16:
        raise UserError(f"--token-file {path}: the first line must hold a token of at least 16 "
                        "characters")
    if not all(c.isascii() and c.isprintable() and c != " " for c in token):
        raise UserError(f"--token-file {path}: the token may hold printable ASCII only, no spaces")
    return token


def private_socket(path: str) -> Path:
    """Where the Unix socket goes: a folder only this account can enter (made, mode 700, when
    missing), and no file of anyone's in the way (an old socket of ours is replaced)."""
    where = Path(path).expanduser().absolute()
    folder = where.parent
    try:
        if not folder.exists():
            folder.mkdir(mode=0o700, parents=True)
        info = folder.stat()
    except OSError as exc:
        raise UserError(f"--socket {path}: cannot use its folder ({exc.strerror})") from None
    if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
        raise UserError(f"--socket {path}: its folder {folder} is open to other accounts "
                        f"(mode {stat.S_IMODE(info.st_mode):o}); use a folder of mode 700 of yours")
    if where.exists() or where.is_symlink():
        if not stat.S_ISSOCK(where.lstat().st_mode):
            raise UserError(f"--socket {path}: a file is there; name a new path for the socket")
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(str(where))
            except OSError:
                where.unlink()   # a socket nobody listens on: left by a server that ended
            else:
                raise UserError(f"--socket {path}: another server listens there")
    if len(str(where).encode()) > 107:
        raise UserError(f"--socket {path}: a socket's path holds at most 107 bytes")
    return where


def serve_names(host: str) -> tuple[str, ...]:
    """What a request's Host may name: the loopback names, and the --host given (with this
    machine's names when it listens on every address)."""
    names = {*LOOPBACK_NAMES, host.lower()}
    if host in ("0.0.0.0", "::"):
        names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
    return tuple(sorted(names))


def cmd_serve(args: argparse.Namespace) -> int:
    token = read_token_file(args.token_file) if args.token_file else secrets.token_urlsafe(TOKEN_BYTES)
    socket_path = private_socket(args.socket) if args.socket else None
    if socket_path is None:
        check_port_free(args.host, args.port)
    settings = ServeSettings(command=app_command(args), token=token, host=args.host,
                             port=args.port, socket_path=socket_path, max_tabs=args.max_tabs,
                             names=serve_names(args.host))

    def listening() -> None:
        for line in address_lines(args, settings):
            print(line, flush=True)

    asyncio.run(TabServer(settings).run(on_listening=listening))
    return 0


def address_lines(args: argparse.Namespace, settings: ServeSettings) -> list[str]:
    """What serve prints once it listens: the address to open, token included, first."""
    token = settings.token
    if settings.socket_path is not None:
        return [f"rugpt-tui: serving the app on the socket {settings.socket_path} (only your account "
                "can open it) — one app per browser tab; ctrl+c stops",
                f"  on your own machine: ssh -N -L {args.port}:{settings.socket_path} <this machine>",
                f"  then open http://localhost:{args.port}/?token={token}"]
    # the page finds its websocket at this address: the host's name when it listens on all
    url_host = socket.getfqdn() if args.host in ("0.0.0.0", "::") else args.host
    url = f"http://{f'[{url_host}]' if ':' in url_host else url_host}:{args.port}"
    lines = [f"rugpt-tui: open {url}/?token={token} — one app per browser tab; ctrl+c stops"]
    if args.host in LOOPBACK_NAMES:
        lines.append(f"  from your own machine: ssh -N -L {args.port}:localhost:{args.port} "
                     f"<this machine>, then open http://localhost:{args.port}/?token={token}")
    else:
        lines.append(f"rugpt-tui: warning: listening on {args.host}: anyone on that network who "
                     "has this address gets a shell as you; keep the token to yourself")
    return lines
