import json

import pytest
import torch
from transformers.generation.logits_process import (
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from core.generation import (
    Done,
    IncrementalDecoder,
    Notice,
    TokenEvent,
    cache_keyword,
    generate_stream,
    inspect_next,
)
from core.sampling import SamplingSettings
from tests.helpers import run_cli


def run(session, prompt, **kw):
    stop = kw.pop("should_stop", lambda: False)
    events = list(generate_stream(session, prompt, SamplingSettings(**kw), should_stop=stop))
    tokens = [e for e in events if isinstance(e, TokenEvent)]
    notices = [e for e in events if isinstance(e, Notice)]
    assert isinstance(events[-1], Done)
    return tokens, notices, events[-1]


@pytest.mark.parametrize("penalty", [1.0, 1.3])
@pytest.mark.parametrize("prompt", ["Это", "Модель получает на вход последовательность"])
def test_greedy_equals_model_generate(demo_session, prompt, penalty):
    tokens, _, done = run(demo_session, prompt, greedy=True, max_new_tokens=40,
                          repetition_penalty=penalty)
    enc = demo_session.tokenizer(prompt, return_tensors="pt")
    ref = demo_session.model.generate(**enc, do_sample=False, max_new_tokens=40,
                                      repetition_penalty=penalty)
    assert done.ids == ref[0, enc["input_ids"].shape[1]:].tolist()
    assert [t.id for t in tokens] == done.ids
    assert done.stop_reason == "length" and done.new_tokens == 40


def test_sampled_probabilities_match_transformers_on_the_model(demo_session):
    """Recompute each step's logits with a full forward pass and run transformers' warpers."""
    s = SamplingSettings(temperature=0.8, top_k=40, top_p=0.9, seed=5, max_new_tokens=12)
    tokens, _, done = run(demo_session, "Жил-был старик", **vars(s))
    prompt_ids = demo_session.tokenizer("Жил-был старик")["input_ids"]
    ids = list(prompt_ids)
    for event in tokens:
        with torch.no_grad():
            logits = demo_session.model(torch.tensor([ids])).logits[:, -1]   # (1, V)
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


def test_same_seed_same_text_and_global_rng_untouched(demo_session):
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    _, _, a = run(demo_session, "Это", seed=42, max_new_tokens=20)
    assert torch.equal(torch.rand(3), expected)
    _, _, b = run(demo_session, "Это", seed=42, max_new_tokens=20)
    _, _, c = run(demo_session, "Это", seed=43, max_new_tokens=20)
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


def test_eos_stops_and_is_included(fresh_session):
    first, _, _ = run(fresh_session, "Это", greedy=True, max_new_tokens=1)
    eos = first[0].id
    fresh_session.model.generation_config.eos_token_id = eos
    tokens, _, done = run(fresh_session, "Это", greedy=True, max_new_tokens=30)
    assert done.stop_reason == "eos" and done.ids == [eos] and len(tokens) == 1


def test_stop_string(demo_session):
    _, _, full = run(demo_session, "Это", greedy=True, max_new_tokens=30, repetition_penalty=1.5)
    stop = full.text[5:9]
    assert len(stop) == 4
    _, _, done = run(demo_session, "Это", greedy=True, max_new_tokens=30, repetition_penalty=1.5,
                     stop=(stop,))
    assert done.stop_reason == "stop"
    assert stop in done.text and full.text.startswith(done.text)
    assert done.new_tokens < 30


def test_context_overflow_cuts_prompt_from_the_left(demo_session):
    prompt = "слово " * 400
    n_prompt = len(demo_session.tokenizer(prompt)["input_ids"])
    assert n_prompt > 256
    _, notices, done = run(demo_session, prompt, greedy=True, max_new_tokens=16)
    assert done.prompt_tokens == 256 - 16 and done.new_tokens == 16
    assert any("cut from the left" in n.message for n in notices)
    _, notices, done = run(demo_session, "Это", greedy=True, max_new_tokens=1000)
    assert done.new_tokens + done.prompt_tokens <= 256
    assert any("max new tokens cut" in n.message for n in notices)


def test_empty_prompt_starts_from_bos(demo_session):
    _, notices, done = run(demo_session, "", greedy=True, max_new_tokens=3)
    assert done.new_tokens == 3 and notices


def test_utf8_split_characters_never_show_replacement(demo_session):
    tok = demo_session.tokenizer
    text = "😀 мир 🇷🇺 ёж👍🏽"
    ids = tok(text)["input_ids"]
    assert len(ids) > len(text.split())  # the emoji really are split into several tokens
    dec = IncrementalDecoder(tok)
    pieces = [dec.push(i) for i in ids]
    assert all("\ufffd" not in p for p in pieces)
    assert "".join(pieces) == text
    assert pieces[0] == ""  # the first byte of 😀 alone shows nothing


def test_random_ids_stream_is_prefix_of_full_decode(demo_session):
    tok = demo_session.tokenizer
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        ids = torch.randint(3, len(tok), (40,), generator=g).tolist()
        dec = IncrementalDecoder(tok)
        streamed = "".join(dec.push(i) for i in ids)
        full = tok.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        assert full.startswith(streamed)


def test_cache_keyword_matches_this_transformers(demo_session):
    import inspect

    params = inspect.signature(demo_session.model.forward).parameters
    assert cache_keyword(demo_session.model) in params


def test_next_token_inspector(demo_session):
    view = inspect_next(demo_session, "Модель получает")
    n = len(demo_session.tokenizer("Модель получает")["input_ids"])
    assert view.logits_shape == (1, n, demo_session.model.config.vocab_size)
    probs = [p for _, _, p, _ in view.top]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1
    assert view.entropy_bits > 0


def test_generate_cli_jsonl(demo_dir):
    result = run_cli("generate", "--model", "demo", "--prompt", "Это", "--max-new-tokens", "6",
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
    result = run_cli("generate", "--model", "demo", "--prompt", "x", "--temperature", "0")
    assert result.returncode == 2 and "temperature" in result.stderr
