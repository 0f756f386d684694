"""How soon the app shows itself and takes keys: `rugpt-tui --model demo` started in a
pseudo-terminal (80×24), measured from the start of the process to

- the first frame on a first start (no frame kept yet: Textual draws it);
- the first frame on a later start (the frame kept from the last start is drawn before
  Textual is imported, tui.process.early_frame);
- a key typed 0.3 s after the start shown in the Tokenize editor (the app really running);

and the import of the app's module alone. With `--baseline REV` the same runs on that commit
(checked out beside this tree), alternating with this tree's in one run, so both see the same
machine.

    python -m bench.first_frame [--runs 9] [--baseline REV]

Bytecode is cached (as in an installed app): the first run of each tree writes it and is
not counted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.terminal_bytes import ROOT, Terminal, checkout

os.environ.pop("PYTHONDONTWRITEBYTECODE", None)   # an installed app has its bytecode cached
TABS = "Tokenize F2"
TYPED = "Ж"
TYPE_AT = 0.3   # seconds after the start: a user who starts typing at once


def start(tree: Path, cache: Path, typing: bool) -> tuple[float, float | None]:
    """Seconds from the process's start to the tabs on screen, and (typing) to the typed
    key shown after them."""
    began = time.monotonic()
    term = Terminal(tree, 80, 24, env={"RUGPT_TUI_CACHE": str(cache)})
    try:
        frame = shown = None
        typed = not typing
        while shown is None and time.monotonic() - began < 60:
            now = time.monotonic() - began
            if not typed and now >= TYPE_AT:
                os.write(term.master, TYPED.encode())
                typed = True
            seen = bytes(term.seen)
            at = seen.find(TABS.encode())
            if frame is None and at >= 0:
                frame = now
                if not typing:
                    break
            # the key after the first tabs: an echo by a terminal not yet in raw mode is not it
            if at >= 0 and TYPED.encode() in seen[at:]:
                shown = now
            time.sleep(0.005)
        if frame is None:
            raise TimeoutError("the app never showed its tabs")
        return frame, shown
    finally:
        term.close()


def app_import(tree: Path) -> float:
    """Seconds to import the app's module (the part of the start the app's code decides)."""
    module = "tui.shell.app" if (tree / "tui" / "shell" / "app.py").exists() else "tui.app"
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], cwd=tree, capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(tree)), check=True)
    return float(out.stdout)


def measure(tree: Path, cache: Path) -> dict[str, float | None]:
    shutil.rmtree(cache / "first-frames", ignore_errors=True)
    first, _ = start(tree, cache, typing=False)   # nothing kept: this one keeps its frame
    later, typed = start(tree, cache, typing=True)
    return {"first start": first, "later start": later, "typed key shown": typed,
            "app import": app_import(tree)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--baseline", default=None, help="a commit to measure side by side")
    args = parser.parse_args()
    builds = [("this tree", ROOT)]
    results: dict[str, list[dict]] = {}
    caches = {}
    with checkout(args.baseline) as baseline:
        if baseline is not None:
            builds.insert(0, (f"baseline {args.baseline}", baseline))
        for name, tree in builds:   # warm-up: bytecode written, files in the page cache
            caches[name] = Path(tempfile.mkdtemp(prefix="rugpt-tui-bench-cache-"))
            measure(tree, caches[name])
            results[name] = []
        for _ in range(args.runs):
            for name, tree in builds:
                results[name].append(measure(tree, caches[name]))
    columns = list(results[builds[0][0]][0])
    print(f"{'median seconds':<22}" + "".join(f"{c:>17}" for c in columns))
    medians = {}
    for name, _ in builds:
        medians[name] = {c: statistics.median(r[c] for r in results[name] if r[c] is not None)
                         for c in columns}
        print(f"{name:<22}" + "".join(f"{medians[name][c]:>17.3f}" for c in columns))
    if args.baseline:
        base, this = (medians[name] for name, _ in builds)
        print(f"{'this / baseline':<22}" + "".join(f"{this[c] / base[c]:>17.2f}" for c in columns))


if __name__ == "__main__":
    main()
