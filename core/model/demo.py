"""The `demo` model: a tiny GPT-2 built locally and deterministically from a shipped corpus.

It makes the app work with no network, and it is the test fixture. Tokenizer: byte-level BPE
trained with `tokenizers` on `resources/texts_ru.txt` and the training corpus, special tokens
laid out as in current ruGPT-3 (`<pad>`=0, `<s>`=1, `</s>`=2). Weights: random init from a
fixed seed.
"""

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from core.base.modes import follow_umask
from core.base.paths import cache_dir, corpus_path, texts_path
from core.base.quiet import quiet_transformers
from core.base.safe_write import FolderLock, check_output_folder, writing_folder

BUILDER_VERSION = 3
SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", "<unk>"]
VOCAB_SIZE = 3000
SEED = 1234
MODEL_CONFIG = dict(n_layer=2, n_head=4, n_embd=64, n_positions=256, n_inner=256)


def tokenizer_lines() -> list[str]:
    lines = []
    for path in (texts_path(), corpus_path()):
        lines += [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return lines


def _fingerprint() -> str:
    h = hashlib.sha256()
    h.update(texts_path().read_bytes())
    h.update(corpus_path().read_bytes())
    h.update(json.dumps([BUILDER_VERSION, SPECIAL_TOKENS, VOCAB_SIZE, SEED, MODEL_CONFIG]).encode())
    return h.hexdigest()[:12]


def build_demo_model(out: str | os.PathLike) -> Path:
    """Train the tokenizer, init the model, `save_pretrained` both into `out`."""
    from tokenizers import ByteLevelBPETokenizer, Tokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

    quiet_transformers()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    bpe = ByteLevelBPETokenizer(add_prefix_space=False)
    bpe.train_from_iterator(
        tokenizer_lines(), vocab_size=VOCAB_SIZE, min_frequency=1,
        special_tokens=SPECIAL_TOKENS, show_progress=False,
    )
    # `tokenizer_object=` keeps the trained vocabulary (vocab_file/merges_file paths do not).
    tokenizer = GPT2TokenizerFast(
        tokenizer_object=Tokenizer.from_str(bpe.to_str()), bos_token="<s>", eos_token="</s>",
        pad_token="<pad>", unk_token="<unk>", model_max_length=MODEL_CONFIG["n_positions"],
    )

    config = GPT2Config(
        vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        # Dropout off: the demo is for looking and for reproducible tests.
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, **MODEL_CONFIG,
    )
    return save_seeded_model(GPT2LMHeadModel, config, tokenizer, SEED, out)


def save_seeded_model(model_class, config, tokenizer, seed: int, out: Path) -> Path:
    """Random-init `model_class(config)` from `seed` (the caller's global RNG untouched),
    and `save_pretrained` it with its tokenizer into `out`."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_class(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out


COMPLETE_MARK = ".complete"   # written last: a cache entry without it is rebuilt


def demo_model_dir() -> Path:
    """The cached demo model folder, built on first use. Each build goes to its own temporary
    folder that is renamed into place only when complete, so two apps building it at once,
    or a build killed half-way, never leave a broken copy in use."""
    target = cache_dir() / f"demo-{_fingerprint()}"
    if (target / COMPLETE_MARK).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".demo-build-", dir=target.parent))
    try:
        build_demo_model(tmp)
        (tmp / COMPLETE_MARK).touch()
        follow_umask(tmp)
        if target.exists() and not (target / COMPLETE_MARK).exists():
            # an incomplete copy from an older build: move it aside (it is ours, in our cache)
            stale = Path(tempfile.mkdtemp(prefix=".demo-stale-", dir=target.parent))
            try:
                os.replace(target, stale / "old")
            except OSError:
                pass
            shutil.rmtree(stale, ignore_errors=True)
        try:
            os.replace(tmp, target)
        except OSError:  # another process won the race: use its complete copy
            if not (target / COMPLETE_MARK).exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def write_demo_model(out: str | os.PathLike) -> Path:
    """`rugpt-tui demo-model --out DIR`: the same build, written under the output-folder rule."""
    target = check_output_folder(out)
    with FolderLock(target), writing_folder(target, {"step": 0, "note": "demo model"}) as tmp:
        build_demo_model(tmp)
    return target
