"""The app's first frame, drawn before Textual has even been imported.

Importing Textual and laying out the first screen takes most of a second on a small machine,
and the terminal stays blank meanwhile. But the first screen is the same at every start with
the same terminal, model and theme: the app keeps what it drew (`remember`, once its real
first frame is out) in the cache folder, and the next start writes those bytes to the terminal
first thing (`draw`). The real first frame then replaces it with the same picture.

From then until Textual's driver takes the terminal over, the terminal is in raw mode: keys
typed meanwhile wait in its input queue, are not echoed over the frame, and ctrl+q/ctrl+s
are not taken for flow control; the driver restores the settings found here when it ends.
If the app fails before that, `release()` gives the terminal back as it was.

Never imports Textual: this runs before it is loaded (an import-linter contract says so).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import stat
import sys
import termios
import tty
from dataclasses import dataclass
from pathlib import Path

from core.base.paths import cache_dir

FRAMES_DIR = "first-frames"
FRAMES_KEPT = 8          # terminals of different sizes, models, themes: the newest kept
LARGEST_FRAME = 4 << 20  # bytes: a full frame of a very large terminal is well below this
ALTERNATE_SCREEN = "\x1b[?1049h"
ENTER = ALTERNATE_SCREEN + "\x1b[?25l"   # no cursor either, as the app's driver sets
LEAVE = "\x1b[?1049l\x1b[?25h"
# What else decides how the same screen is drawn: colours, the terminal's kind.
DRAWING_ENVIRONMENT = ("TERM", "COLORTERM", "TERM_PROGRAM", "NO_COLOR", "FORCE_COLOR",
                       "TEXTUAL_COLOR_SYSTEM")


def installed_versions() -> list[str]:
    """What draws the frame, as installed: Textual's and the app's releases (the names of
    their dist-info folders in the interpreter's package folders — read without importing
    or even looking up Textual, which is still loading) and the app's stylesheet (its size
    and time, for a copy being worked on). An upgrade draws a new first frame."""
    found = []
    for folder in sys.path:
        if not folder.endswith(("site-packages", "dist-packages")):
            continue
        try:
            found += [name for name in os.listdir(folder) if name.endswith(".dist-info")
                      and name.lower().startswith(("textual-", "rugpt_tui-", "rugpt-tui-"))]
        except OSError:
            pass
    try:
        sheet = (Path(__file__).parent.parent / "shell" / "app.tcss").stat()
        found.append(f"app.tcss {sheet.st_size} {sheet.st_mtime_ns}")
    except OSError:
        pass
    return sorted(set(found))


def frame_key(columns: int, rows: int, model: str, theme: str | None, lesson: bool) -> str:
    """What identifies a first frame: the terminal's size and kind, the model named in the
    status line, the saved theme, whether the lesson opens at start, and what draws it."""
    described = [columns, rows, model, theme, lesson, [os.environ.get(n) for n in DRAWING_ENVIRONMENT],
                 installed_versions()]
    return hashlib.sha1(json.dumps(described).encode()).hexdigest()[:20]


def frame_path(key: str) -> Path:
    return cache_dir() / FRAMES_DIR / f"{key}.ans"


def kept_frame(key: str) -> str | None:
    """The frame kept under `key`; None when there is none (or something that is not one of
    our frames is there: a FIFO, a huge file)."""
    path = frame_path(key)
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode) or info.st_size > LARGEST_FRAME:
            return None
        return path.read_text(encoding="utf-8")
    except (OSError, ValueError):
        return None


def remember(key: str, frame: str) -> bool:
    """Keep `frame` (the terminal text of the app's first frame) for the next start, if it
    is not already what is kept; the oldest frames beyond FRAMES_KEPT go. Never raises: a
    cache that cannot be written only means a slower next start. True when written."""
    path = frame_path(key)
    try:
        if kept_frame(key) == frame:
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temp.write_text(frame, encoding="utf-8")
        os.replace(temp, path)
        kept = sorted(path.parent.glob("*.ans"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in kept[FRAMES_KEPT:]:
            old.unlink(missing_ok=True)
        return True
    except (OSError, ValueError):
        return False


@dataclass
class EarlyFrame:
    """The terminal between the start of the command and Textual's driver."""

    fd_in: int
    fd_out: int
    original: list           # the terminal's settings as the command found them
    key: str | None          # the first frame's key (None: not known, nothing to keep)
    drawn: bool              # a kept frame is on the screen
    handed_over: bool = False   # the driver has taken the terminal (and will restore it)
    previous_sigterm: object = None   # SIGTERM's handler before this one

    def release(self) -> None:
        """The app is not going to take the terminal over (it failed first): give the
        terminal back as it was. Nothing to do once the driver has it."""
        if self.handed_over:
            return
        self.handed_over = True
        try:
            termios.tcsetattr(self.fd_in, termios.TCSANOW, self.original)
            if self.drawn:
                os.write(self.fd_out, LEAVE.encode())
        except (OSError, termios.error):
            pass
        if self.previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self.previous_sigterm)

    def terminated(self, signum, _frame) -> None:
        """SIGTERM before the app is up (it then handles the signal itself): the terminal
        given back, then the process ends."""
        self.release()
        raise SystemExit(128 + signum)


def raw_settings(settings: list) -> list:
    """The terminal's settings with no echo, no line editing, no signals from keys, no flow
    control, no CR/LF translation of input: as the app's driver sets them."""
    new = list(settings)
    new[tty.LFLAG] &= ~(termios.ECHO | termios.ICANON | termios.IEXTEN | termios.ISIG)
    new[tty.IFLAG] &= ~(termios.IXON | termios.IXOFF | termios.ICRNL | termios.INLCR | termios.IGNCR)
    new[tty.CC] = list(new[tty.CC])
    new[tty.CC][termios.VMIN] = 1
    new[tty.CC][termios.VTIME] = 0
    return new


def draw(model: str | None, theme: str | None, lesson: bool = False, fd_in: int = 0,
         fd_out: int = 1) -> EarlyFrame | None:
    """At the start of the app: the terminal in raw mode and, when one is kept for this
    terminal, model and theme, the first frame on it (`model` None: not known, no frame).
    None where the app does not run on this terminal (not a terminal, a browser tab,
    another driver asked for)."""
    if os.environ.get("TEXTUAL_DRIVER"):   # served: a browser tab
        return None
    try:
        if not (os.isatty(fd_in) and os.isatty(fd_out)):
            return None
        columns, rows = shutil.get_terminal_size()   # as the app's driver measures it
        original = termios.tcgetattr(fd_in)
    except (OSError, termios.error):
        return None
    key = frame_key(columns, rows, model, theme, lesson) if model and columns and rows else None
    early = EarlyFrame(fd_in, fd_out, original, key, drawn=False)
    early.previous_sigterm = signal.signal(signal.SIGTERM, early.terminated)   # before raw mode
    try:
        termios.tcsetattr(fd_in, termios.TCSANOW, raw_settings(original))
    except termios.error:
        early.release()
        return None
    frame = kept_frame(key) if key else None
    if frame:
        early.drawn = True   # from the first byte on, there is a screen to leave on release
        data = memoryview((ENTER + frame).encode())
        try:
            while data:
                data = data[os.write(fd_out, data):]
        except OSError:
            pass
    return early
