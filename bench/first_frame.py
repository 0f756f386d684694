"""Time to the app's first frame: from starting `rugpt-tui --model demo` in a pseudo-terminal
(80×24) to the first frame that shows the panes' tabs, and the import of the app's module
alone. With `--baseline REV` the same runs on that commit (checked out beside this tree),
alternating with this tree's in one run, so both see the same machine.

    python -m bench.first_frame [--runs 9] [--baseline REV]

Bytecode is cached (as in an installed app): the first run of each tree writes it and is
not counted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.terminal_bytes import ROOT, Terminal, checkout

os.environ.pop("PYTHONDONTWRITEBYTECODE", None)   # an installed app has its bytecode cached


def first_frame(tree: Path) -> float:
    """Seconds from the process's start to the tabs on screen."""
    start = time.monotonic()
    term = Terminal(tree, 80, 24)
    try:
        term.wait_for("Tokenize F2", timeout=60)
        return time.monotonic() - start
    finally:
        term.close()


def app_import(tree: Path) -> float:
    """Seconds to import the app's module (the part of the start the app's code decides)."""
    module = "tui.shell.app" if (tree / "tui" / "shell" / "app.py").exists() else "tui.app"
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], cwd=tree, capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(tree)), check=True)
    return float(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--baseline", default=None, help="a commit to measure side by side")
    args = parser.parse_args()
    builds = [("this tree", ROOT)]
    frames: dict[str, list[float]] = {}
    imports: dict[str, list[float]] = {}
    with checkout(args.baseline) as baseline:
        if baseline is not None:
            builds.insert(0, (f"baseline {args.baseline}", baseline))
        for name, tree in builds:   # warm-up: bytecode written, files in the page cache
            first_frame(tree)
            app_import(tree)
            frames[name], imports[name] = [], []
        for _ in range(args.runs):
            for name, tree in builds:
                frames[name].append(first_frame(tree))
                imports[name].append(app_import(tree))
    print(f"{'build':<24}{'first frame (median)':>22}{'app import (median)':>22}")
    for name, _ in builds:
        print(f"{name:<24}{statistics.median(frames[name]):>20.3f} s"
              f"{statistics.median(imports[name]):>20.3f} s")
    if args.baseline:
        base, this = (statistics.median(frames[name]) for name, _ in builds)
        print(f"first frame: this tree / baseline = {this / base:.2f}")


if __name__ == "__main__":
    main()
