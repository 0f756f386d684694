"""Time to the first token of a chat reply after 1,500 tokens of history, on a random-init
model of ruGPT-3 small's shape: reusing the KV cache of the earlier turns (our Chat) vs
prefilling the whole conversation again (what a stateless chat loop does), in one run.

    python -m bench.chat_speed [--device cpu|cuda] [--history 1500] [--repeats 3]
"""

import argparse
import statistics

from bench.common import rugpt3_shape_session
from core.data.grammar import corpus_sentences
from core.inference.chat import Chat, ChatDone
from core.inference.sampling import SamplingSettings


def history(chat: Chat, tokens: int) -> list[dict]:
    """Exchanges of the demo's sentences until the rendered conversation holds `tokens`."""
    sentences, messages, i = corpus_sentences(2000, seed=5), [], 0
    while not messages or len(chat.prompt_ids(messages)) < tokens:
        messages += [{"role": "user", "content": sentences[i]},
                     {"role": "assistant", "content": sentences[i + 1]}]
        i += 2
    return messages


def ttft(events) -> tuple[float, int]:
    done = next(e for e in events if isinstance(e, ChatDone))
    return done.ttft_s, done.reused_tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--history", type=int, default=1500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    session = rugpt3_shape_session(args.device)
    settings = SamplingSettings(seed=1, max_new_tokens=1)
    probe = Chat(session)
    past = history(probe, args.history)
    reused, fresh, reuse_counts = [], [], []
    for r in range(args.repeats):
        # the conversation so far, answered once: its cache holds every turn
        chat = Chat(session, messages=past[:-1])
        list(chat.answer(settings))
        # the next turn: only the new message (and the last reply's re-tokenized end) is prefilled
        seconds, count = ttft(list(chat.send(f"Что было потом? {r}", settings)))
        reused.append(seconds)
        reuse_counts.append(count)
        # the same turn from scratch: the whole conversation prefilled
        again = Chat(session, messages=chat.messages[:-1])
        fresh.append(ttft(list(again.answer(settings)))[0])
    prompt = len(chat.prompt_ids(chat.messages[:-1]))
    r, f = statistics.median(reused), statistics.median(fresh)
    print(f"ruGPT-3 small shape, {args.device}: {prompt} prompt tokens "
          f"({statistics.median(reuse_counts):.0f} of them from the cache)")
    print(f"time to first token: cache reused {r * 1000:.0f} ms, full prefill {f * 1000:.0f} ms "
          f"→ {f / r:.1f}× faster")


if __name__ == "__main__":
    main()
