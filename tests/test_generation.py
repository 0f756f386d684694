import json

import pytest
import torch
from transformers.generation.logits_process import (
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from core.inference.generation import (
    GenerationDone,
    GenerationNotice,
    IncrementalDecoder,
    TokenEvent,
    cache_keyword,
    generate_stream,
    inspect_next,
)
from core.inference.sampling import SamplingSettings
from tests.helpers import cli


def run(session, prompt, **kw):
    stop = kw.pop("should_stop", lambda: False)
    events = list(generate_stream(session, prompt, SamplingSettings(**kw), should_stop=stop))
    tokens = [e for e in events if isinstance(e, TokenEvent)]
    notices = [e for e in events if isinstance(e, GenerationNotice)]
    assert isinstance(events[-1], GenerationDone)
    return tokens, notices, events[-1]


@pytest.mark.parametrize("penalty", [1.0, 1.3])
@pytest.mark.parametrize("prompt", ["Это", "Модель получает на вход последовательность"])
def test_greedy_equals_model_generate(family_session, prompt, penalty):
    tokens, _, done = run(family_session, prompt, greedy=True, max_new_tokens=40,
                          repetition_penalty=penalty)
    enc = family_session.tokenizer(prompt, return_tensors="pt")
    ref = family_session.model.generate(**enc, do_sample=False, max_new_tokens=40,
                                      repetition_penalty=penalty)
    assert done.ids == ref[0, enc["input_ids"].shape[1]:].tolist()
    assert [t.id for t in tokens] == done.ids
    assert done.stop_reason == "length" and done.new_tokens == 40


def test_sampled_probabilities_match_transformers_on_the_model(family_session):
    """Recompute each step's logits with a full forward pass and run transformers' warpers."""
    s = SamplingSettings(temperature=0.8, top_k=40, top_p=0.9, seed=5, max_new_tokens=12)
    tokens, _, done = run(family_session, "Жил-был старик", **vars(s))
    prompt_ids = family_session.tokenizer("Жил-был старик")["input_ids"]
    ids = list(prompt_ids)
    for event in tokens:
        with torch.no_grad():
            logits = family_session.model(torch.tensor([ids])).logits[:, -1]   # (1, V)
        scores = TemperatureLogitsWarper(0.8)(None, logits)
        scores = TopKLogitsWarper(40)(None, scores)
        scores = TopPLogitsWarper(0.9)(None, scores)
        probs = scores.softmax(-1)[0]
        assert event.prob == pytest.approx(float(probs[event.id]), rel=1e-4)
        best = torch.topk(probs, 5)
        assert [i for i, _ in event.top[:5]] == best.indices.tolist() or \
            [round(p, 5) for _, p in event.top[:5]] == [round(p, 5) for p in best.values.tolist()]
        ids.append(event.id)
    assert done.seed == 5


def test_same_seed_same_text_and_global_rng_untouched(family_session):
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    _, _, a = run(family_session, "Это", seed=42, max_new_tokens=20)
    assert torch.equal(torch.rand(3), expected)
    _, _, b = run(family_session, "Это", seed=42, max_new_tokens=20)
    _, _, c = run(family_session, "Это", seed=43, max_new_tokens=20)
    assert a.ids == b.ids and a.ids != c.ids


def test_cancel_takes_effect_within_one_step(demo_session):
    seen = []

    def stop():
        return len(seen) >= 3

    events = generate_stream(demo_session, "Это", SamplingSettings(max_new_tokens=50), should_stop=stop)
    for event in events:
        if isinstance(event, TokenEvent):
            seen.append(event)
        done = event
    assert done.stop_reason == "cancel" and done.new_tokens == 3


@pytest.mark.parametrize("as_list", [False, True], ids=["one id", "a list (Llama 3 style)"])
def test_eos_stops_and_is_included(fresh_family_session, as_list):
    first, _, _ = run(fresh_family_session, "Это", greedy=True, max_new_tokens=1)
    eos = first[0].id
    config = fresh_family_session.model.generation_config
    config.eos_token_id = [fresh_family_session.tokenizer.eos_token_id, eos] if as_list else eos
    tokens, _, done = run(fresh_family_session, "Это", greedy=True, max_new_tokens=30)
    assert done.stop_reason == "eos" and done.ids == [eos] and len(tokens) == 1


def test_stop_string(family_session):
    _, _, full = run(family_session, "Это", greedy=True, max_new_tokens=30, repetition_penalty=1.5)
    stop = full.text[5:9]
    assert len(stop) == 4
    _, _, done = run(family_session, "Это", greedy=True, max_new_tokens=30, repetition_penalty=1.5,
                     stop=(stop,))
    assert done.stop_reason == "stop"
    assert stop in done.text and full.text.startswith(done.text)
    assert done.new_tokens < 30


def test_context_overflow_cuts_prompt_from_the_left(family_session):
    prompt = "слово " * 400
    n_prompt = len(family_session.tokenizer(prompt)["input_ids"])
    assert n_prompt > 256
    _, notices, done = run(family_session, prompt, greedy=True, max_new_tokens=16)
    assert done.prompt_tokens == 256 - 16 and done.new_tokens == 16
    assert any("cut from the left" in n.message for n in notices)
    _, notices, done = run(family_session, "Это", greedy=True, max_new_tokens=1000)
    assert done.new_tokens + done.prompt_tokens <= 256
    assert any("max new tokens cut" in n.message for n in notices)


def test_empty_prompt_starts_from_bos(family_session):
    _, notices, done = run(family_session, "", greedy=True, max_new_tokens=3)
    assert done.new_tokens == 3
    # GPT-2 encodes "" as nothing: we start from <s> and say so; Llama's tokenizer gives <s>
    assert bool(notices) == (family_session.tokenizer("")["input_ids"] == [])


def test_utf8_split_characters_never_show_replacement(family_session):
    tok = family_session.tokenizer
    text = "😀 мир 🇷🇺 ёж👍🏽"
    ids = tok(text)["input_ids"]
    assert len(ids) > len(text.split())  # the emoji really are split into several tokens
    dec = IncrementalDecoder(tok)
    pieces = [dec.push(i) for i in ids]
    assert all("\ufffd" not in p for p in pieces)
    assert "".join(pieces) == text
    assert pieces[0] == ""  # the first byte of 😀 alone shows nothing (or <s>)


def test_new_text_keeps_its_space_after_the_prompt(family_session):
    """A word that starts a reply after the prompt keeps the space before it, as the prompt
    and the reply decoded together have it."""
    tok = family_session.tokenizer
    prompt, reply = tok("Это")["input_ids"], tok("Это был дом", add_special_tokens=False)["input_ids"]
    reply = reply[len(tok("Это", add_special_tokens=False)["input_ids"]):]
    dec = IncrementalDecoder(tok, context=prompt)
    streamed = "".join(dec.push(i) for i in reply)
    assert streamed == " был дом"


def test_random_ids_stream_is_prefix_of_full_decode(family_session):
    """Any ids at all, so also byte sequences that are not UTF-8. (A SentencePiece decoder
    turns a whole run of `<0xNN>` pieces that is not UTF-8 into one `�` per piece, which can
    change text already shown, so for it the runs are valid characters: see the test below.)"""
    tok = family_session.tokenizer
    g = torch.Generator().manual_seed(0)
    pool = torch.tensor([i for i, piece in enumerate(tok.convert_ids_to_tokens(list(range(len(tok)))))
                         if i >= 3 and not (piece.startswith("<0x") and piece.endswith(">"))])
    for _ in range(20):
        ids = pool[torch.randint(len(pool), (40,), generator=g)].tolist()
        dec = IncrementalDecoder(tok)
        streamed = "".join(dec.push(i) for i in ids)
        full = tok.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        assert full.startswith(streamed)


def test_cache_keyword_matches_this_transformers(family_session):
    import inspect

    params = inspect.signature(family_session.model.forward).parameters
    assert cache_keyword(family_session.model) in params


def test_next_token_inspector(family_session):
    view = inspect_next(family_session, "Модель получает")
    n = len(family_session.tokenizer("Модель получает")["input_ids"])
    assert view.logits_shape == (1, n, family_session.model.config.vocab_size)
    probs = [p for _, _, p, _ in view.top]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1
    assert view.entropy_bits > 0


def test_generate_cli_jsonl(family_model):
    result = cli("generate", "--model", family_model, "--prompt", "Это", "--max-new-tokens", "6",
                     "--seed", "3", "--jsonl")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    steps, done = lines[:-1], lines[-1]
    assert [s["step"] for s in steps] == list(range(6))
    for s in steps:
        assert set(s) >= {"step", "id", "text", "prob", "top"} and len(s["top"]) >= 5
    assert done["done"] is True and done["new_tokens"] == 6
    assert done["ids"] == [s["id"] for s in steps]
    assert done["text"] == "".join(s["text"] for s in steps)
    assert done["stop_reason"] == "length" and done["tokens_per_s"] > 0


def test_generate_cli_bad_setting():
    result = cli("generate", "--model", "demo", "--prompt", "x", "--temperature", "0")
    assert result.returncode == 2 and "temperature" in result.stderr


@pytest.mark.parametrize("greedy", [True, False])
def test_static_cache_decodes_the_same_tokens(demo_session, greedy):
    """The static-cache path (compiled on a GPU) gives what the dynamic cache gives."""
    settings = SamplingSettings(seed=7, max_new_tokens=40, greedy=greedy)
    *_, dynamic = generate_stream(demo_session, "Кот спал", settings)
    for _ in range(2):   # the kept cache is reset between generations
        *_, static = generate_stream(demo_session, "Кот спал", settings, static=True)
        assert static.ids == dynamic.ids and static.text == dynamic.text


def test_static_cache_from_the_command_line(demo_dir):
    plain = cli("generate", "--model", "demo", "--prompt", "Мама", "--seed", "2", "--jsonl")
    static = cli("generate", "--model", "demo", "--prompt", "Мама", "--seed", "2", "--jsonl",
                 "--static-cache")
    assert static.returncode == 0, static.stderr
    assert json.loads(static.stdout.splitlines()[-1])["ids"] == json.loads(plain.stdout.splitlines()[-1])["ids"]
