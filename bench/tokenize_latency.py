"""Keystroke → updated Tokenize view, in the real app driven by Pilot, on 2,000 characters of
Russian text; the bare tokenizer call on the same text for comparison.

Three cases: one long paragraph typed at its end (the editor's worst case: it redraws a
whole paragraph per visible row), the same text as lines, typed at the end, and typed in the
middle (every chip after the edit moves); then 50,000 characters, where views are built
on a worker thread so that keys keep reaching the editor. For each key: until the editor
holds it, until the pane holds the new view (the target: p99 ≤ 16 ms, one 60 fps frame),
and until the screen has drawn that view.

    python -m bench.tokenize_latency [--keys 200]
"""

import argparse
import asyncio
import time

from bench.common import demo_session, pct, type_into_tokenize_pane
from core.model.demo import tokenizer_lines as corpus_lines


def russian_text(n_chars: int = 2000, sep: str = " ") -> str:
    text = ""
    for line in corpus_lines():
        text += line + sep
        if len(text) >= n_chars:
            return text[:n_chars]
    return text


async def measure(session, text: str, keys: int, at: int | None = None):
    from textual.widgets import TextArea

    from tui.panes.tokenize.pane import TokenizePane
    from tui.shell.app import RuGPTApp

    app = RuGPTApp(session=session)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = app.query_one(TokenizePane)
        area = app.query_one("#tok-input", TextArea)
        area.load_text(text)
        area.focus()
        area.move_cursor(area.document.end)
        while pane.view is None or pane.view.text != text:
            await asyncio.sleep(0.001)
        await pilot.pause(2.5)  # the app settles its heap once the load is over and all is quiet
        return await type_into_tokenize_pane(app, pilot, keys, at=at)


def row(name: str, xs: list[float]) -> str:
    return f"{name:<34} p50 {pct(xs, 50) * 1000:6.2f} ms   p99 {pct(xs, 99) * 1000:6.2f} ms"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--keys", type=int, default=200)
    args = parser.parse_args()
    session = demo_session()
    paragraph, lines = russian_text(), russian_text(sep="\n")
    bare = []
    for _ in range(200):
        start = time.perf_counter()
        session.tokenizer(paragraph)
        bare.append(time.perf_counter() - start)
    n_tokens = len(session.tokenizer(paragraph)["input_ids"])
    print(f"text: {len(paragraph)} characters, {n_tokens} tokens (demo tokenizer), {args.keys} keys a case")
    print(row("bare tokenizer call", bare))
    long = (lines * 25)[:50_000]
    cases = [("one paragraph, typing at the end", paragraph, None, args.keys),
             ("lines, typing at the end", lines, None, args.keys),
             ("lines, typing in the middle", lines, len(lines) // 2, args.keys),
             ("50,000 characters (no target), at the end", long, None, args.keys // 4)]
    for name, text, at, keys in cases:
        timings = asyncio.run(measure(session, text, keys, at))
        print(f"{name}:")
        print(row("  keystroke → editor has it", timings.edit))
        print(row("  keystroke → view updated", timings.view)
              + ("   (target p99 ≤ 16 ms)" if len(text) <= 2000 else ""))
        print(row("  keystroke → frame drawn", timings.frame))


if __name__ == "__main__":
    main()
