"""Bytes per second the app writes to its terminal — what crosses an SSH link.

The real app runs in a pseudo-terminal of the given size, keys are typed into it as a
terminal sends them, and every byte it writes is counted: idle on the Tokenize pane,
watching a training run on the Train pane, and streaming a generation. With `--baseline REV`
the same scenarios run on that commit too (checked out beside this tree), in the same run.

    python -m bench.terminal_bytes [--size 120x40] [--seconds 10] [--baseline REV]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import select
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEYS = {"f3": "\x1bOR", "f4": "\x1bOS", "f5": "\x1b[15~", "f8": "\x1b[19~", "f9": "\x1b[20~",
        "tab": "\t", "home": "\x1b[H", "ctrl+k": "\x0b", "ctrl+q": "\x11"}


class Terminal:
    """The app in a pty: a reader thread counts (time, bytes) of everything it writes."""

    def __init__(self, tree: Path, cols: int, rows: int, env: dict | None = None) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        env = dict(os.environ, TERM="xterm-256color", COLUMNS=str(cols), LINES=str(rows),
                   HF_HUB_OFFLINE="1", PYTHONPATH=str(tree),
                   RUGPT_TUI_HOME=tempfile.mkdtemp(prefix="rugpt-tui-bench-"),   # not yours
                   **(env or {}))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tui.cli", "--model", "demo"], cwd=tree, env=env,
            stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
        os.close(slave)
        self.master = master
        self.chunks: list[tuple[float, int]] = []
        self.seen = bytearray()
        self.done = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while not self.done:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if not ready:
                continue
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            self.chunks.append((time.monotonic(), len(data)))
            self.seen += data
            if len(self.seen) > 1 << 20:
                del self.seen[: len(self.seen) - (1 << 19)]

    def press(self, *keys: str) -> None:
        for key in keys:
            os.write(self.master, KEYS.get(key, key).encode())
            time.sleep(0.5)   # a person's pace: each key is handled before the next

    def wait_for(self, text: str, timeout: float = 120) -> None:
        end = time.monotonic() + timeout
        while text.encode() not in self.seen:
            if time.monotonic() > end:
                raise TimeoutError(f"the app never showed {text!r}")
            time.sleep(0.1)

    def rate(self, seconds: float, *keys: str) -> float:
        """Bytes per second written over the next `seconds` (after pressing `keys`)."""
        start = time.monotonic()
        self.press(*keys)
        time.sleep(max(0.0, seconds - (time.monotonic() - start)))
        end = time.monotonic()
        return sum(n for t, n in self.chunks if start <= t < end) / (end - start)

    def close(self) -> None:
        """Quit as a user would; a run still going (the app asks first) is ended by signal."""
        try:
            self.press("ctrl+q")
            self.proc.wait(timeout=5)
        except Exception:
            import signal

            for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
                try:
                    os.killpg(self.proc.pid, sig)
                    self.proc.wait(timeout=wait)
                    break
                except Exception:
                    continue
        self.done = True
        os.close(self.master)


def scenarios(tree: Path, cols: int, rows: int, seconds: float) -> dict[str, float]:
    term = Terminal(tree, cols, rows)
    try:
        term.wait_for("vocab")
        time.sleep(4)                   # the first views, the heap settling
        idle = term.rate(seconds)
        # Train pane: enough epochs to keep the run going while it is measured
        term.press("f4", "tab", "tab", "home", "ctrl+k", *"500", "f8")
        term.wait_for("ETA")
        time.sleep(2)
        training = term.rate(seconds)
        term.press("f9")
        time.sleep(3)
        term.press("f3")
        generating = term.rate(3, "f5")  # one generation of the default length, streamed
        return {"idle": idle, "training": training, "generating": generating}
    finally:
        term.close()


@contextmanager
def checkout(rev: str | None) -> Iterator[Path | None]:
    """`rev` checked out beside this tree for as long as the block runs (None: nothing)."""
    if rev is None:
        yield None
        return
    folder = Path(tempfile.mkdtemp(prefix="rugpt-tui-baseline-"))
    subprocess.run(["git", "worktree", "add", "--detach", str(folder), rev], cwd=ROOT,
                   check=True, capture_output=True)
    try:
        yield folder
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(folder)], cwd=ROOT,
                       capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="120x40")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--baseline", default=None, help="a commit to measure side by side")
    args = parser.parse_args()
    cols, rows = (int(x) for x in args.size.split("x"))
    builds = [("this build", ROOT)]
    results = {}
    with checkout(args.baseline) as baseline:
        if baseline is not None:
            builds.insert(0, (f"baseline {args.baseline}", baseline))
        for name, tree in builds:
            results[name] = scenarios(tree, cols, rows, args.seconds)
    print(f"bytes written to a {cols}x{rows} terminal, per second ({args.seconds:.0f} s each)")
    print(f"{'build':<24}{'idle':>10}{'training':>12}{'generating':>13}")
    for name, r in results.items():
        print(f"{name:<24}{r['idle']:>10,.0f}{r['training']:>12,.0f}{r['generating']:>13,.0f}")
    if len(results) == 2:
        (_, old), (_, new) = results.items()
        print(f"{'ratio (old / new)':<24}" + "".join(
            f"{old[k] / max(new[k], 1):>{w}.1f}×" for k, w in
            (("idle", 9), ("training", 11), ("generating", 12))))
    print("goals at 120x40: idle ≤ 1,024 B/s, watching a run ≤ 16,384 B/s")


if __name__ == "__main__":
    main()
