"""Real corpora: tokenizing throughput, time to the first step of a second run, and memory,
on generated 50 MB and 500 MB text files, side by side in one run.

For each size:
- bare: the fast tokenizer alone, batched, with its parallelism on (`encode_batch_fast`
  over the file's lines, 4,096 at a time) — the most a tokenizing pipeline can hope for;
- first run: `prepare_data` with an empty cache (read the text, split, tokenize, write the
  cache) — its tokens/s against the bare tokenizer's (goal ≥ 0.8×), its peak resident
  memory per token: what it has above the same run on a 5 MB corpus, over the extra tokens
  (the model's, the libraries' and an evaluation's own memory cancel out; goal ≤ 16 bytes),
  and the process's whole peak (goal on 500 MB: ≤ 2 GB);
- second run: `train` for one step on the same data — seconds from the model being loaded
  to the first optimizer step (goal ≤ 3 s at any size; it includes the step-0 eval of a
  fixed 65,536-token sample) and peak memory per token, measured the same way. Block 256,
  the demo's context.

Each measurement runs in a process of its own (peak memory is per process), demo tokenizer
and model, on this machine's cores.
    python -m bench.data_scale [--sizes 50,500]
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import bench.common  # noqa: F401  (offline, a workspace of its own)

ROOT = Path(__file__).resolve().parent.parent


def write_corpus(path: Path, megabytes: int) -> None:
    """Lines of one to six sentences of the demo's grammar, `megabytes` MB of UTF-8."""
    from core.data.grammar import corpus_sentences

    pool, rng = corpus_sentences(50_000, seed=1), random.Random(megabytes)
    target, size = megabytes * 1_000_000, 0
    with open(path, "w", encoding="utf-8") as f:
        while size < target:
            lines = [" ".join(rng.choices(pool, k=rng.randint(1, 6))) for _ in range(10_000)]
            chunk = "\n".join(lines) + "\n"
            f.write(chunk)
            size += len(chunk.encode())


# Each probe prints one JSON line: run as `python -c PROBE path cache_dir`.
PROBE_HEAD = """
import json, os, sys, time
sys.path.insert(0, {root!r})
def rss():   # resident bytes now
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
def peak():   # this image's peak (VmHWM): ru_maxrss would keep the forked parent's
    with open("/proc/self/status") as f:
        return int(next(l for l in f if l.startswith("VmHWM:")).split()[1]) * 1024
path, cache_dir = sys.argv[1], sys.argv[2]
from core.model.session import load_session
session = load_session("demo", device="cpu")
import accelerate, datasets, numpy   # imported before the baseline: not the data's memory
base = rss()
"""

BARE = """
os.environ["TOKENIZERS_PARALLELISM"] = "true"
backend = session.tokenizer.backend_tokenizer
tokens, batch, start = 0, [], time.perf_counter()
with open(path, encoding="utf-8") as f:
    for line in f:
        batch.append(line.rstrip("\\n"))
        if len(batch) == 4096:
            tokens += sum(len(e.ids) for e in backend.encode_batch_fast(batch))
            batch = []
    if batch:
        tokens += sum(len(e.ids) for e in backend.encode_batch_fast(batch))
print(json.dumps({"tokens": tokens, "seconds": time.perf_counter() - start}))
"""

FIRST = """
from core.data.cache import TokenCache
from core.training.config import TrainConfig
from core.training.batches import prepare_data
start = time.perf_counter()
data = prepare_data(session.tokenizer, TrainConfig(train=path), 256, cache=TokenCache(cache_dir))
seconds = time.perf_counter() - start
tokens = data.stats["train"]["tokens"] + data.stats["test"]["tokens"]
print(json.dumps({"tokens": tokens, "seconds": seconds, "peak_above": peak() - base,
                  "peak": peak(), "cached": data.stats["cached"]}))
"""

SECOND = """
os.environ["RUGPT_TUI_CACHE"] = os.path.dirname(cache_dir)
from core.training.config import TrainConfig
from core.training.events import Stats, Step
from core.training.loop import train
marks, start = {}, time.perf_counter()
def on_event(event):
    if isinstance(event, (Stats, Step)) and event.kind not in marks:
        marks[event.kind] = time.perf_counter() - start
        if isinstance(event, Stats):
            marks["tokens"] = event.train["tokens"] + event.test["tokens"]
            marks["cached"] = event.cached
train(session, TrainConfig(train=path, max_steps=1, block_size=256, batch_size=8,
                           sample_tokens=1), on_event=on_event)
print(json.dumps({"data_ready": marks["stats"], "first_step": marks["step"],
                  "tokens": marks["tokens"], "cached": marks["cached"], "peak_above": peak() - base}))
"""


def probe(body: str, path: Path, cache_dir: Path) -> dict:
    code = PROBE_HEAD.format(root=str(ROOT)) + body
    done = subprocess.run([sys.executable, "-c", code, str(path), str(cache_dir)],
                          capture_output=True, text=True, env=dict(os.environ))
    if done.returncode:
        raise SystemExit(done.stderr.strip().splitlines()[-1])
    return json.loads(done.stdout.strip().splitlines()[-1])


def per_token(run: dict, base: dict) -> float:
    """Peak memory the extra data costs, per extra token."""
    return (run["peak_above"] - base["peak_above"]) / (run["tokens"] - base["tokens"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50,500", help="corpus sizes in MB, comma-separated")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rugpt-tui-data-scale-") as tmp:
        tmp = Path(tmp)
        os.environ["HF_HOME"] = str(tmp / "hf")   # datasets' own caches, thrown away after
        print(f"{'size':>7} {'tokens':>12} {'bare tok/s':>11} {'first tok/s':>12} {'ratio':>6} "
              f"{'B/token 1st':>11} {'peak 1st':>9} {'ready s':>8} {'1st step s':>10} {'B/token 2nd':>11}")
        # The same probes on a 5 MB corpus (big enough for a full eval sample): memory per
        # token is what the extra data costs beyond that run's, over its extra tokens.
        small = tmp / "corpus-5mb.txt"
        write_corpus(small, 5)
        base_first = probe(FIRST, small, tmp / "small" / "tokens")
        base_second = probe(SECOND, small, tmp / "small" / "tokens")
        for megabytes in (int(s) for s in args.sizes.split(",")):
            path = tmp / f"corpus-{megabytes}mb.txt"
            write_corpus(path, megabytes)
            cache_dir = tmp / "cache" / "tokens"
            bare = probe(BARE, path, cache_dir)
            first = probe(FIRST, path, cache_dir)
            second = probe(SECOND, path, cache_dir)
            assert not first["cached"] and second["cached"] and first["tokens"] == second["tokens"]
            bare_rate = bare["tokens"] / bare["seconds"]
            first_rate = bare["tokens"] / first["seconds"]   # the same text tokens (no EOS)
            print(f"{megabytes:>5}MB {first['tokens']:>12,} {bare_rate:>11,.0f} {first_rate:>12,.0f} "
                  f"{first_rate / bare_rate:>5.2f}× {per_token(first, base_first):>11.1f} "
                  f"{first['peak'] / 1e9:>7.2f}GB "
                  f"{second['data_ready']:>8.2f} {second['first_step']:>10.2f} "
                  f"{per_token(second, base_second):>11.1f}", flush=True)
            path.unlink()


if __name__ == "__main__":
    main()
