"""The first frame drawn before Textual is imported (tui.process.early_frame): kept from the
last start, written to a real pseudo-terminal while the app's import is still held back,
keys typed meanwhile kept for the editor, the terminal given back as it was — whether the
app ends normally or fails before its driver takes over."""

import fcntl
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import time

import pytest

from core.base.settings import DEFAULT_THEME
from tests.helpers import ROOT
from tui.process import early_frame

SIZE = (97, 31)   # a size no other test's terminal has: its kept frame is this test's alone

# The app's own entry point, with `import textual` held back until a file appears (or
# failing, with GATE_FAIL): what the terminal shows meanwhile was drawn without Textual.
GATED_APP = """
import os, sys, time
class HoldTextual:
    def find_spec(self, name, path=None, target=None):
        if name == "textual":
            if os.environ.get("GATE_FAIL"):
                raise ImportError("textual cannot be imported")
            while not os.path.exists(os.environ["GATE_FILE"]):
                time.sleep(0.02)
        return None
sys.meta_path.insert(0, HoldTextual())
from tui.cli.main import main
sys.exit(main())
"""


class Terminal:
    """The gated app on a pseudo-terminal of SIZE; reads everything it writes."""

    def __init__(self, gate, *args, fail=False):
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", SIZE[1], SIZE[0], 0, 0))
        self.settings_before = termios.tcgetattr(slave)
        env = dict(os.environ, GATE_FILE=str(gate),
                   GATE_FAIL="1" if fail else "")
        self.proc = subprocess.Popen([sys.executable, "-c", GATED_APP, "--model", "demo", *args],
                                     cwd=ROOT, env=env, stdin=slave, stdout=slave, stderr=slave,
                                     start_new_session=True)
        self.slave, self.master, self.seen = slave, master, b""
        RUNNING.append(self.proc)

    def read_until(self, text: bytes, timeout=90.0) -> bool:
        end = time.monotonic() + timeout
        while text not in self.seen and time.monotonic() < end:
            if select.select([self.master], [], [], 0.1)[0]:
                try:
                    self.seen += os.read(self.master, 1 << 16)
                except OSError:
                    break
        return text in self.seen

    def quit(self) -> int:
        os.write(self.master, b"\x11")   # ctrl+q
        code = self.proc.wait(timeout=30)
        self.read_until(b"\x00", timeout=0.3)   # whatever it wrote last
        return code

    def close(self) -> None:
        os.close(self.master)
        os.close(self.slave)


RUNNING: list = []


@pytest.fixture(autouse=True)
def no_app_left():
    """An app a failed test left waiting at the gate is ended."""
    yield
    while RUNNING:
        proc = RUNNING.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture(autouse=True)
def terminal_kind(monkeypatch):
    """The terminal's kind is part of a frame's key: the app's and the test's are the same;
    its size is the pseudo-terminal's (not COLUMNS/LINES)."""
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("LINES", raising=False)
    for name in early_frame.DRAWING_ENVIRONMENT[1:]:
        monkeypatch.delenv(name, raising=False)


def kept_frames() -> list:
    return sorted((early_frame.frame_path("x").parent).glob("*.ans"))


def test_the_second_start_shows_the_first_frame_before_textual_loads_and_keeps_the_keys(tmp_path):
    gate = tmp_path / "textual-may-load"
    for old in kept_frames():
        if old.stem == early_frame.frame_key(*SIZE, "demo", DEFAULT_THEME, False):
            old.unlink()
    # first start: nothing kept yet, so nothing is drawn until Textual draws its frame
    first = Terminal(gate)
    time.sleep(1.5)
    assert b"Tokenize F2" not in first.seen and not first.read_until(b"Tokenize F2", timeout=0.5)
    gate.touch()
    assert first.read_until(b"GPT2LMHeadModel")
    assert first.quit() == 0
    first.close()
    key = early_frame.frame_key(*SIZE, "demo", DEFAULT_THEME, False)
    kept = early_frame.frame_path(key)
    assert kept.exists(), "the first frame was not kept"
    assert "Tokenize F2" in kept.read_text(encoding="utf-8")

    # second start: the kept frame is on the screen while Textual's import is held back
    gate.unlink()
    second = Terminal(gate)
    assert second.read_until(b"Tokenize F2", timeout=30), "no frame before Textual loaded"
    frame = kept.read_bytes().replace(b"\n", b"\r\n")   # as the terminal passes newlines on
    assert second.read_until(frame[-200:], timeout=10)
    assert second.seen.startswith(early_frame.ENTER.encode() + frame)
    os.write(second.master, "кот".encode())   # typed while the app cannot read yet
    time.sleep(0.5)
    assert "кот".encode() not in second.seen, "keys were echoed over the frame"
    gate.touch()
    assert second.read_until("кот".encode(), timeout=60), "the keys typed early were lost"
    assert second.read_until(b"GPT2LMHeadModel")
    assert second.quit() == 0
    assert second.seen.count(b"\x1b[?1049h") == 1, "the alternate screen was entered twice (cleared)"
    assert termios.tcgetattr(second.slave) == second.settings_before, "the terminal was left raw"
    second.close()


def test_a_failure_before_the_driver_gives_the_terminal_back(tmp_path):
    """Textual cannot be imported: one line, exit 1, and the terminal as it was — no raw
    mode left behind, the alternate screen left."""
    gate = tmp_path / "never"
    key = early_frame.frame_key(*SIZE, "demo", DEFAULT_THEME, False)
    early_frame.remember(key, "\x1b[1;1HTokenize F2 (kept)")
    term = Terminal(gate, fail=True)
    assert term.proc.wait(timeout=60) == 1
    term.read_until(b"\x00", timeout=0.5)
    assert termios.tcgetattr(term.slave) == term.settings_before
    text = term.seen.decode("utf-8", "replace")
    assert "Tokenize F2 (kept)" in text
    assert text.rstrip().endswith("rugpt-tui: internal error: ImportError: textual cannot be imported")
    # the frame is left first, so the line is on the screen the user comes back to
    assert text.index(early_frame.LEAVE) < text.index("rugpt-tui: internal error")
    assert "Traceback" not in text
    term.close()


def test_ctrl_q_typed_while_textual_loads_quits_once_it_is_up(tmp_path):
    """Not eaten as flow control (XON), as a terminal not yet in raw mode would."""
    gate = tmp_path / "textual-may-load"
    term = Terminal(gate)
    time.sleep(1.0)
    os.write(term.master, b"\x11")   # ctrl+q
    gate.touch()
    assert term.proc.wait(timeout=30) == 0
    assert termios.tcgetattr(term.slave) == term.settings_before
    term.close()


def test_terminated_before_the_driver_the_terminal_is_given_back(tmp_path):
    """SIGTERM while Textual loads (the kept frame on the screen, the terminal raw): the
    process ends and leaves the terminal as it found it."""
    gate = tmp_path / "never"
    early_frame.remember(early_frame.frame_key(*SIZE, "demo", DEFAULT_THEME, False), "\x1b[1;1HTokenize F2 (kept)")
    term = Terminal(gate)
    assert term.read_until(b"Tokenize F2 (kept)", timeout=30)
    term.proc.terminate()
    assert term.proc.wait(timeout=30) == 128 + signal.SIGTERM
    term.read_until(b"\x00", timeout=0.5)
    assert termios.tcgetattr(term.slave) == term.settings_before
    assert term.seen.decode("utf-8", "replace").endswith(early_frame.LEAVE)
    term.close()


def test_a_frame_is_kept_per_terminal_model_theme_lesson_and_release_and_only_the_newest(
        monkeypatch, tmp_path):
    monkeypatch.setenv("RUGPT_TUI_CACHE", str(tmp_path))
    key = early_frame.frame_key
    keys = {key(80, 24, "demo", None, False), key(81, 24, "demo", None, False),
            key(80, 24, "gpt2", None, False), key(80, 24, "demo", "nord", False),
            key(80, 24, "demo", None, True)}
    installed = early_frame.installed_versions()
    assert any(v.startswith("textual-") for v in installed), installed   # found where it is
    assert any(v.startswith(("rugpt_tui-", "rugpt-tui-")) for v in installed), installed
    monkeypatch.setattr(early_frame, "installed_versions", lambda: [*installed, "textual-99.0.dist-info"])
    keys.add(key(80, 24, "demo", None, False))   # another Textual: another frame
    monkeypatch.undo()
    monkeypatch.setenv("RUGPT_TUI_CACHE", str(tmp_path))
    monkeypatch.setenv("COLORTERM", "truecolor")
    keys.add(key(80, 24, "demo", None, False))
    assert len(keys) == 7
    assert early_frame.remember("a", "frame a") is True
    assert early_frame.remember("a", "frame a") is False   # already kept: not written again
    for n in range(early_frame.FRAMES_KEPT + 2):
        early_frame.remember(f"k{n}", f"frame {n}")
        os.utime(early_frame.frame_path(f"k{n}"), (n + 10, n + 10))
    kept = sorted(p.stem for p in early_frame.frame_path("a").parent.glob("*.ans"))
    assert len(kept) == early_frame.FRAMES_KEPT and "k0" not in kept and "k9" in kept


def test_what_is_not_a_kept_frame_is_never_drawn_nor_waited_on(monkeypatch, tmp_path):
    """A FIFO or a huge file where a frame would be: not read (a FIFO would block the start)."""
    monkeypatch.setenv("RUGPT_TUI_CACHE", str(tmp_path))
    path = early_frame.frame_path("fifo")
    path.parent.mkdir(parents=True)
    os.mkfifo(path)
    assert early_frame.kept_frame("fifo") is None
    assert early_frame.remember("fifo", "a frame") is True and early_frame.kept_frame("fifo") == "a frame"
    with open(early_frame.frame_path("huge"), "wb") as f:
        f.truncate(early_frame.LARGEST_FRAME + 1)
    assert early_frame.kept_frame("huge") is None


def test_no_early_frame_off_a_terminal_or_for_another_driver(monkeypatch):
    read, write = os.pipe()
    assert early_frame.draw("demo", None, fd_in=read, fd_out=write) is None
    master, slave = os.openpty()
    monkeypatch.setenv("TEXTUAL_DRIVER", "textual.drivers.web_driver:WebDriver")
    assert early_frame.draw("demo", None, fd_in=slave, fd_out=slave) is None
    for fd in (read, write, master, slave):
        os.close(fd)


@pytest.mark.parametrize("kept", [False, True])
def test_draw_sets_raw_mode_and_release_undoes_it(monkeypatch, tmp_path, kept):
    monkeypatch.setenv("RUGPT_TUI_CACHE", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "80")   # the size as the app's driver would measure it
    monkeypatch.setenv("LINES", "24")
    master, slave = os.openpty()
    before = termios.tcgetattr(slave)
    if kept:
        early_frame.remember(early_frame.frame_key(80, 24, "demo", None, False), "FRAME")
    early = early_frame.draw("demo", None, fd_in=slave, fd_out=slave)
    raw = termios.tcgetattr(slave)
    assert not raw[3] & (termios.ECHO | termios.ICANON | termios.ISIG) and not raw[0] & termios.IXON
    assert early.drawn is kept
    written = os.read(master, 1 << 16) if select.select([master], [], [], 0.2)[0] else b""
    assert written == ((early_frame.ENTER + "FRAME").encode() if kept else b"")
    assert signal.getsignal(signal.SIGTERM) == early.terminated   # which releases, then exits
    early.release()
    assert signal.getsignal(signal.SIGTERM) == early.previous_sigterm
    assert termios.tcgetattr(slave) == before
    left = os.read(master, 1 << 16) if select.select([master], [], [], 0.2)[0] else b""
    assert left == (early_frame.LEAVE.encode() if kept else b"")
    os.close(master)
    os.close(slave)
