import os
import subprocess
import sys
from contextlib import asynccontextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args, env=None, timeout=120, cwd=ROOT, **popen):
    """Run `rugpt-tui ARGS` as a user would, in a fresh process."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "tui.cli", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=timeout, **popen)


def cli(*args, env=None):
    """`rugpt-tui ARGS` in this process — the same `main()`, its stdout, stderr and exit code —
    for commands that need no process of their own (no signals, limits or concurrency): a
    fresh interpreter costs seconds of imports each time."""
    import contextlib
    import io

    from tui.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    saved = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:   # argparse's own errors
                code = exc.code if isinstance(exc.code, int) else 2
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return subprocess.CompletedProcess(["rugpt-tui", *args], code, out.getvalue(), err.getvalue())


def tree_digest(folder) -> dict[str, bytes]:
    """Every file under `folder` (relative path → bytes): equal digests mean nothing changed."""
    folder = Path(folder)
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


async def wait_for(pilot, predicate, timeout=20.0, step=0.05):
    waited = 0.0
    while not predicate():
        if waited > timeout:
            raise AssertionError("condition not met in time")
        await pilot.pause(step)
        waited += step


@asynccontextmanager
async def tokenize_pane(session, size=(120, 40)):
    """The app on `session` with its Tokenize pane showing a view: (app, pilot, pane, editor)."""
    from textual.widgets import TextArea

    from tui.panes.tokenize.pane import TokenizePane
    from tui.shell.app import RuGPTApp

    app = RuGPTApp(session=session)
    async with app.run_test(size=size) as pilot:
        pane = app.query_one(TokenizePane)
        await wait_for(pilot, lambda: pane.view is not None)
        yield app, pilot, pane, app.query_one("#tok-input", TextArea)


async def start_unsaved_run(pilot, epochs: str, steps: int = 1):
    """From the Train pane: no output folder, EPOCHS epochs, F8; returns the pane once the
    run has done `steps` steps."""
    from textual.widgets import Input

    from tui.panes.train.pane import TrainPane

    app = pilot.app
    await pilot.press("f4")
    await wait_for(pilot, lambda: "samples" in str(app.query_one("#train-preview").render()))
    app.query_one("#train-out", Input).value = ""
    app.query_one("#train-epochs", Input).value = epochs
    await pilot.press("f8")
    pane = app.query_one(TrainPane)
    await wait_for(pilot, lambda: pane.run is not None and len(pane.run.steps) >= steps, timeout=60)
    return pane


def screen_text(app) -> str:
    """What the screen shows, row by row, as text (read from the app's own SVG screenshot)."""
    import html
    import re

    svg = app.export_screenshot()
    rows: dict[float, list[tuple[float, str]]] = {}
    for x, y, text in re.findall(r'<text[^>]*?x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>', svg):
        rows.setdefault(float(y), []).append((float(x), html.unescape(text).replace("\xa0", " ")))
    return "\n".join("".join(t for _, t in sorted(parts)) for _, parts in sorted(rows.items()))
