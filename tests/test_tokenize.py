import json
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.tokens.view import tokenize_view
from core.tokens.words import most_split, single_token_words, word_counts, word_spread
from tests.helpers import cli, tokenize_pane, wait_for

ALPHABET = st.one_of(
    st.characters(min_codepoint=0x0400, max_codepoint=0x04FF),   # Cyrillic
    st.sampled_from(list("abcXYZ0123456789 \t\n\r.,!?-—«»\u00a0\u2003")),
    st.sampled_from(["\u0301", "\u0308", "\u200d", "😀", "🇷🇺", "👍🏽", "👨\u200d👩\u200d👧", "€", "日本",
                     "ё", "Ё", "е\u0308", "  ", " \t ", "\n\n"]),
    st.characters(codec="utf-8", exclude_categories=("Cs",)),
)


def tokenizer_of(name: str, demo_session):
    """GPT-2 byte-level BPE (the demo), and SentencePiece-style BPE with byte fallback, with
    the `▁` markers added by the pre-tokenizer (Llama as transformers builds it now) or by
    the normalizer (older converted Llama tokenizers); and Qwen2's byte-level BPE, whose NFC
    normalizer can join a letter and its combining mark into one character."""
    from tests import families

    if name == "demo":
        return demo_session.tokenizer
    if name == "llama":
        return families.llama_tokenizer()
    if name == "qwen2":
        return families.qwen2_tokenizer()
    return families.llama_normalizer_tokenizer()


@pytest.fixture(scope="session", params=["demo", "llama", "llama-normalizer", "qwen2"])
def any_tokenizer(request, demo_session):
    return tokenizer_of(request.param, demo_session)


@pytest.fixture(scope="session", params=["llama", "llama-normalizer"])
def sentencepiece_tokenizer(request, demo_session):
    return tokenizer_of(request.param, demo_session)


def owners_by_offsets(tokenizer, text: str) -> dict[int, int]:
    """The SPEC's rule, straight from the tokenizer's offsets: each character belongs to the
    last token whose offsets cover it."""
    offsets = tokenizer(text, return_offsets_mapping=True)["offset_mapping"]
    owner = {}
    for i, (start, end) in enumerate(offsets):
        for c in range(start, end):
            owner[c] = i
    return owner


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.lists(ALPHABET, max_size=60).map("".join))
def test_view_matches_tokenizer_and_joins_back(any_tokenizer, text):
    tok = any_tokenizer
    view = tokenize_view(tok, text)
    assert view.ids == tok(text)["input_ids"]
    assert "".join(t.text for t in view.tokens) == text
    pos = 0
    for t in view.tokens:
        assert t.start == pos and text[t.start:t.end] == t.text
        pos = t.end
    assert pos == len(text)
    held = b"".join(bytes.fromhex(t.bytes) for t in view.tokens)
    if view.table.byte_level and tok.backend_tokenizer.normalizer is None:
        assert held == text.encode("utf-8")
    # every token's characters are the ones its own offsets give it (the last one wins)
    for c, i in owners_by_offsets(tok, text).items():
        assert view.tokens[i].start <= c < view.tokens[i].end, (c, i)


def test_sentencepiece_markers_and_byte_fallback(sentencepiece_tokenizer):
    """`▁` that the tokenizer adds owns no character; `<0xNN>` pieces of a character give it
    to the piece that completes it, and show their bytes."""
    view = tokenize_view(sentencepiece_tokenizer, "ъ 😀")
    pieces = [(t.raw, t.text) for t in view.tokens]
    # the marker before "ъ" (added, not typed) and the four bytes of the emoji
    assert pieces[0] == ("<s>", "")
    assert pieces[1] == ("▁", "") and pieces[2][1] == "ъ"
    assert [raw for raw, _ in pieces[-4:]] == ["<0xF0>", "<0x9F>", "<0x98>", "<0x80>"]
    assert [text for _, text in pieces[-4:]] == ["", "", "", "😀"]
    assert [t.bytes for t in view.tokens[-4:]] == ["f0", "9f", "98", "80"]
    assert pieces[-5] == ("▁", " ")     # a typed space: it owns it


def test_split_character_belongs_to_completing_token(demo_session):
    view = tokenize_view(demo_session.tokenizer, "😀")
    assert len(view.tokens) > 1
    assert [t.text for t in view.tokens[:-1]] == [""] * (len(view.tokens) - 1)
    assert view.tokens[-1].text == "😀"
    assert view.tokens[0].bytes == "f0"


def test_raw_piece_is_vocabulary_string(demo_session):
    tok = demo_session.tokenizer
    view = tokenize_view(tok, "Привет, мир")
    assert [t.raw for t in view.tokens] == tok.convert_ids_to_tokens(view.ids)
    assert any("Ð" in t.raw for t in view.tokens)  # byte-level alphabet, as the model stores it


def test_special_tokens_marked(demo_session):
    view = tokenize_view(demo_session.tokenizer, "конец</s>")
    assert view.tokens[-1].special and view.tokens[-1].text == "</s>"
    assert view.tokens[-1].id == demo_session.tokenizer.eos_token_id


def test_word_statistics(demo_session):
    tok = demo_session.tokenizer
    text = "сеть абвгдеёжз сеть"
    view = tokenize_view(tok, text)
    words = list(zip(*word_counts(view)))
    assert [word for word, _, _ in words] == ["сеть", "абвгдеёжз", "сеть"]
    for word, start, tokens in words:  # each count is what the tokenizer gives for that word in context
        inside = [t for t in view.tokens if t.start < start + len(word) and
                  (t.end > start or (t.start == t.end and t.start >= start))]
        assert tokens == len(inside)
    spread = word_spread(view)
    assert spread["сеть"] == (1, 2)   # one token after a space, two at the start
    top, tokens = most_split(spread, 1)[0]
    assert top == "абвгдеёжз" and tokens == max(n for word, _, n in words if word == top) > 1
    assert single_token_words(spread) == ["сеть"]
    assert view.chars_per_token == len(text) / view.count


def test_empty_text(demo_session):
    view = tokenize_view(demo_session.tokenizer, "")
    assert view.ids == [] and view.tokens == [] and view.chars_per_token == 0


def tensor_view(tokenizer, lines):
    """What `tokenizer(..., return_tensors="pt", padding=True)` hands the model."""
    batch = tokenizer(lines, return_tensors="pt", padding=True)
    return SimpleNamespace(shape=tuple(batch["input_ids"].shape),
                           input_ids=batch["input_ids"].tolist(),
                           attention_mask=batch["attention_mask"].tolist())


def test_pane_batch_rows_match_the_padded_batch(demo_session):
    from core.tokens.words import line_token_counts, pad_mask

    tok = demo_session.tokenizer
    lines = ["Короткая.", "Строка подлиннее, в ней больше слов.", "Короткая.", "😀 и ё"]
    batch = tensor_view(tok, lines)
    counts = line_token_counts(tok, lines)
    assert counts == line_token_counts(tok, lines)   # second time from memory
    width = batch.shape[1]
    assert [pad_mask(n, width, tok.padding_side == "left") for n in counts] == batch.attention_mask
    side, tok.padding_side = tok.padding_side, "left"
    try:
        left = tensor_view(tok, lines)
        assert [pad_mask(n, width, True) for n in counts] == left.attention_mask
    finally:
        tok.padding_side = side


def test_tokenize_cli_json(family_model):
    from transformers import AutoTokenizer

    from core.model.demo import demo_model_dir

    text = "Привет, мир! 😀"
    result = cli("tokenize", "--model", family_model, "--json", text)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    tok = AutoTokenizer.from_pretrained(demo_model_dir() if family_model == "demo" else family_model)
    assert data["ids"] == tok(text)["input_ids"]
    assert data["count"] == len(data["ids"]) == len(data["tokens"])
    assert "".join(t["text"] for t in data["tokens"]) == text
    assert set(data["tokens"][0]) >= {"id", "raw", "text", "bytes", "start", "end"}
    # the emoji belongs to the token that completes its bytes, the others before it are empty
    emoji = [t for t in data["tokens"] if t["start"] == text.index("😀") or t["text"] == "😀"]
    assert emoji[-1]["text"] == "😀" and emoji[-1]["bytes"].endswith("80")
    assert all(t["text"] == "" for t in emoji[:-1])
    # "П" is owned by the piece that holds it, not by a word marker before it
    owner = next(t for t in data["tokens"] if t["text"])
    assert owner["text"].startswith("П") and "d09f" in owner["bytes"]


def test_tokenize_cli_readable(demo_dir):
    result = cli("tokenize", "--model", "demo", "Привет")
    assert result.returncode == 0, result.stderr
    assert "tokens" in result.stdout and "Пр" in result.stdout


async def test_pane_updates_as_you_type(demo_session):
    async with tokenize_pane(demo_session) as (app, pilot, pane, area):
        area.focus()
        area.clear()
        await pilot.press(*"мир и сеть")
        expected = demo_session.tokenizer("мир и сеть")["input_ids"]
        await wait_for(pilot, lambda: pane.view.text == "мир и сеть")
        assert pane.view.ids == expected
        assert f"{len(expected)} tokens" in str(app.query_one("#tok-stats").render())
        chips = app.query_one("#tok-chips").text()
        assert "мир" in str(chips) and "·и" in str(chips)
        assert pane.word_rows == most_split(word_spread(pane.view), 12)
        assert [w for w, _ in pane.word_rows] == ["мир", "и", "сеть"]  # "мир" with no space splits
        assert "сеть" in str(app.query_one("#tok-words").render())

        # the token at the cursor: lit among the chips, described under them
        chips_box, stats = app.query_one("#tok-chips"), app.query_one("#tok-stats")
        assert chips_box._cursor == len(expected) - 1
        assert f"id {expected[-1]}" in str(stats.render())
        area.move_cursor((0, 1))
        await pilot.pause()
        assert chips_box._cursor == 0 and f"token 1/{len(expected)}" in str(stats.render())

        # raw byte-level pieces and ids on demand
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: "Ð" in app.query_one("#tok-chips").text())
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: str(expected[0]) in app.query_one("#tok-chips").text())

        # several lines → a padded batch with its mask
        area.clear()
        area.insert("а\nдлинная строка текста")
        await wait_for(pilot, lambda: pane.view.text == "а\nдлинная строка текста")
        assert "batch of 2 lines" in str(app.query_one("#tok-tensors").render())


EDIT_ALPHABET = st.one_of(
    st.sampled_from(list("абв где ёжз  \n\t.,!?-'s0123 ")),
    st.sampled_from(["</s>", "<s>", "😀", "\u0301", "  ", " \n ", "ab", "don't", "日本"]),
    st.characters(codec="utf-8", exclude_categories=("Cs",)),
)
EDIT_TEXT = st.lists(EDIT_ALPHABET, max_size=40).map("".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(base=EDIT_TEXT, edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 4), EDIT_TEXT),
                                      min_size=1, max_size=4))
def test_edit_retokenizes_exactly(demo_session, base, edits):
    """Re-tokenizing around an edit gives exactly the full tokenizer's view, edit after edit."""
    from core.tokens.view import tokenize_edit

    tok = demo_session.tokenizer
    view = tokenize_view(tok, base)
    for at, remove, insert in edits:
        at = at % (len(view.text) + 1)
        text = view.text[:at] + insert + view.text[at + remove:]
        view = tokenize_edit(tok, view, text)
        full = tokenize_view(tok, text)
        assert view.ids == full.ids == tok(text)["input_ids"]
        assert (view.starts, view.ends) == (full.starts, full.ends)


def test_edit_tokenizes_only_the_words_around_it(demo_session, monkeypatch):
    from core.tokens import view as tokenview
    from core.tokens.splice import Splice

    tok = demo_session.tokenizer
    text = " ".join(["слово"] * 300)
    view = tokenview.tokenize_view(tok, text)
    seen = []
    real = Splice.encode
    monkeypatch.setattr(Splice, "encode", lambda self, t: seen.append(t) or real(self, t))
    edited = text[:700] + "я" + text[700:]
    new = tokenview.tokenize_edit(tok, view, edited)
    assert new.ids == tok(edited)["input_ids"]
    assert len(seen) == 1 and len(seen[0]) < 20 and "я" in seen[0]


def test_view_ignores_padding_and_truncation_left_on_the_tokenizer(demo_session):
    """A batch call elsewhere (training data, the CLI) leaves padding/truncation set on the
    shared Rust tokenizer; the view must still give exactly `tokenizer(text)`'s ids."""
    from core.tokens.view import tokenize_edit
    from core.tokens.words import line_token_counts

    tok = demo_session.tokenizer
    text = "Нейронная сеть учится предсказывать следующее слово. " * 4
    view = tokenize_view(tok, text)
    with_bang = len(tok(text + "!")["input_ids"])
    tok(["а", text], padding="max_length", truncation=True, max_length=5)  # leaves state behind
    assert tok._tokenizer.truncation is not None
    try:
        assert tokenize_view(tok, text).ids == view.ids
        assert tokenize_edit(tok, view, text + " мир").ids == tokenize_view(tok, text + " мир").ids
        assert line_token_counts(tok, [text + "!"]) == [with_bang]
    finally:
        tok(text)  # a plain call resets the shared state for the other tests
    assert len(view.ids) > 5
