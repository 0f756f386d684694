"""Tiny models of other families than GPT-2, built locally and deterministically like the demo
(a tokenizer trained on the shipped corpus, random-init weights from a fixed seed), then
loaded through the same `from_pretrained` paths a user's folder goes through.

- `llama`: `LlamaForCausalLM` (grouped-query attention, untied head) with a SentencePiece-style
  tokenizer: `▁` word markers, BPE with byte fallback (`<0xF0>` pieces), `<s>` added in front.
- `llama-normalizer`: the same vocabulary with the older layout of converted Llama tokenizers,
  where the normalizer prepends `▁` and turns spaces into `▁` (tokenizer only).
"""

from __future__ import annotations

import json
from pathlib import Path

from core.model.demo import save_seeded_model
from core.model.demo import tokenizer_lines as corpus_lines

SEED = 4321
VOCAB_SIZE = 1200
LLAMA_CONFIG = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                    tie_word_embeddings=False, rms_norm_eps=1e-5)


def _trained_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """BPE over the corpus, split at word markers as SentencePiece does, plus the 256
    byte-fallback pieces (the alphabet is kept small so rare characters fall back to bytes)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    bpe.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    bpe.train_from_iterator(corpus_lines(), trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE, special_tokens=["<unk>", "<s>", "</s>"], limit_alphabet=120,
        show_progress=False))
    model = json.loads(bpe.to_str())["model"]
    vocab = dict(model["vocab"])
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    for b in range(256):
        vocab.setdefault(f"<0x{b:02X}>", len(vocab))
    return vocab, merges


def llama_tokenizer():
    from tokenizers import processors
    from transformers import LlamaTokenizer

    vocab, merges = _trained_vocab()
    tokenizer = LlamaTokenizer(vocab=vocab, merges=merges, model_max_length=LLAMA_CONFIG["max_position_embeddings"])
    # Llama puts <s> in front of every text
    bos = tokenizer.bos_token_id
    tokenizer._tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)])
    tokenizer.pad_token = tokenizer.unk_token
    return tokenizer


def llama_normalizer_tokenizer():
    """The layout where the normalizer, not the pre-tokenizer, adds the `▁` markers."""
    from tokenizers import Tokenizer, decoders, models, normalizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab, merges = _trained_vocab()
    backend = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>",
                                   byte_fallback=True, fuse_unk=True))
    backend.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    backend.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(),
                                         decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    backend.add_special_tokens(["<unk>", "<s>", "</s>"])
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", backend.token_to_id("<s>"))])
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", pad_token="<unk>")


def build_tiny_llama(out: str | Path) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = llama_tokenizer()
    config = LlamaConfig(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         **LLAMA_CONFIG)
    return save_seeded_model(LlamaForCausalLM, config, tokenizer, SEED, Path(out))


CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
          "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def qwen2_tokenizer():
    """Qwen2 style: byte-level BPE behind its own split regex and an NFC normalizer, no BOS,
    ChatML special tokens and a chat template (the demo's vocabulary, tokenizer only)."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import Qwen2Tokenizer

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bpe = ByteLevelBPETokenizer(add_prefix_space=False)
    bpe.train_from_iterator(corpus_lines(), vocab_size=1500, min_frequency=1,
                            special_tokens=specials, show_progress=False)
    model = json.loads(bpe._tokenizer.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    tokenizer = Qwen2Tokenizer(vocab=dict(model["vocab"]), merges=merges)
    tokenizer.add_special_tokens({"additional_special_tokens": specials[1:]})
    tokenizer.chat_template = CHATML
    return tokenizer
