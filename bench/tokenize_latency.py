"""Keystroke → updated Tokenize view, in the real app driven by Pilot, on a 2,000-character
Russian text; the bare tokenizer call on the same text for comparison.

    python bench/tokenize_latency.py [--keys 200]
"""

import argparse
import asyncio
import time

from bench.common import demo_session, pct, type_into_tokenize_pane
from core.demo import corpus_lines


def russian_text(n_chars: int = 2000) -> str:
    text = ""
    for line in corpus_lines():
        text += line + " "
        if len(text) >= n_chars:
            return text[:n_chars]
    return text


async def measure(session, text: str, keys: int) -> list[float]:
    from textual.widgets import TextArea

    from tui.app import RuGPTApp
    from tui.panes.tokenize import TokenizePane

    app = RuGPTApp(session=session)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = app.query_one(TokenizePane)
        area = app.query_one("#tok-input", TextArea)
        area.load_text(text)
        area.focus()
        area.move_cursor(area.document.end)
        while pane.view is None or pane.view.text != text:
            await asyncio.sleep(0.001)
        latencies = await type_into_tokenize_pane(app, pilot, keys)
    return latencies


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--keys", type=int, default=200)
    args = parser.parse_args()
    session = demo_session()
    text = russian_text()
    bare = []
    for _ in range(200):
        start = time.perf_counter()
        session.tokenizer(text)
        bare.append(time.perf_counter() - start)
    lat = asyncio.run(measure(session, text, args.keys))
    n_tokens = len(session.tokenizer(text)["input_ids"])
    print(f"text: {len(text)} characters, {n_tokens} tokens (demo tokenizer)")
    print(f"bare tokenizer call      p50 {pct(bare, 50) * 1000:6.2f} ms   p99 {pct(bare, 99) * 1000:6.2f} ms")
    print(f"keystroke → view update  p50 {pct(lat, 50) * 1000:6.2f} ms   p99 {pct(lat, 99) * 1000:6.2f} ms"
          f"   ({len(lat)} keys; target p99 ≤ 16 ms)")
    print(f"view update / bare tokenizer (p50): {pct(lat, 50) / pct(bare, 50):.1f}×")


if __name__ == "__main__":
    main()
