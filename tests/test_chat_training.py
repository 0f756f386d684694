"""Fine-tuning on dialogues: the loss covers the assistant's replies (and their end-of-turn
marker) only, in pack and pad modes; bad data is one line with file:line; a checkpoint
trained on chats is chatted with under the same template after a restart."""

import json

import pytest

from core.base.errors import UserError
from core.data.cache import TokenCache
from core.data.dialogues import encode_dialogue
from core.data.templates import BUILTIN, template_for
from core.inference.chat import Chat
from core.inference.sampling import SamplingSettings
from core.model.session import load_session
from core.training.batches import prepare_data
from core.training.config import TrainConfig
from core.training.loop import train

CONVERSATION = [{"role": "system", "content": "Будь краток."},
                {"role": "user", "content": "Где спал кот?"},
                {"role": "assistant", "content": "Кот спал в саду."},
                {"role": "user", "content": "А пёс?"},
                {"role": "assistant", "content": "Пёс спал у реки."}]


@pytest.fixture(scope="module")
def tok():
    return load_session("demo", device="cpu").tokenizer


def learned_text(tok, ids, mask):
    """The learned tokens, decoded in runs: one string per stretch of mask 1."""
    runs, current = [], []
    for i, m in zip(ids, mask):
        if m:
            current.append(i)
        elif current:
            runs.append(tok.decode(current, skip_special_tokens=False))
            current = []
    if current:
        runs.append(tok.decode(current, skip_special_tokens=False))
    return runs


def test_only_the_replies_and_their_end_marker_are_learned(tok):
    eos = tok.eos_token
    for name, ends in (("plain-ru", f"{eos}\n"), ("chatml", "<|im_end|>\n")):
        ids, mask, dropped = encode_dialogue(tok, BUILTIN[name], CONVERSATION, block=256)
        assert dropped == 0 and len(ids) == len(mask)
        learned = learned_text(tok, ids, mask)
        assert [t.strip() for t in learned] == [f"Кот спал в саду.{ends}".strip(),
                                                  f"Пёс спал у реки.{ends}".strip()], name
    ids, mask, _ = encode_dialogue(tok, BUILTIN["plain-ru"], CONVERSATION, block=256, train_on_prompt=True)
    assert all(mask)


def test_a_conversation_longer_than_the_block_drops_its_oldest_turns(tok):
    ids, mask, dropped = encode_dialogue(tok, BUILTIN["plain-ru"], CONVERSATION, block=30)
    assert dropped == 2 and len(ids) <= 30
    text = tok.decode(ids, skip_special_tokens=False)
    assert text.startswith("Будь краток.") and "Где спал кот" not in text   # the system stays


def write_dialogues(path, conversations):
    path.write_text("\n".join(json.dumps({"messages": c}, ensure_ascii=False) for c in conversations)
                    + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("pack", [True, False], ids=["pack", "pad"])
def test_rows_keep_the_mask_in_pack_and_pad_modes(tok, tmp_path, pack):
    from core.data.rows import collate

    data = write_dialogues(tmp_path / "chats.jsonl", [CONVERSATION] * 6)
    prepared = prepare_data(tok, TrainConfig(train=str(data), test_split=0.34, pack=pack), 64,
                            cache=TokenCache(tmp_path / "cache"))
    stats = prepared.stats["dialogue"]["train"]
    assert stats["conversations"] == 4 and stats["turns"] == 8
    ids, mask, _ = encode_dialogue(tok, template_for(tok, "auto"), CONVERSATION, block=64)
    assert stats["trained_tokens"] == 4 * sum(mask)
    assert stats["trained_share"] == pytest.approx(sum(mask) / len(ids))
    batch = collate(tok.pad_token_id)([prepared.train_rows[i] for i in range(len(prepared.train_rows))])
    labels, inputs = batch["labels"], batch["input_ids"]
    learned = inputs[labels != -100]
    if pack:   # blocks: a tail shorter than a block is left out
        assert 0 < learned.numel() <= stats["trained_tokens"]
    else:
        assert learned.numel() == stats["trained_tokens"]
    assert "Кот спал в саду." in tok.decode(learned.tolist())
    assert "Где спал кот" not in tok.decode(learned.tolist())


@pytest.mark.parametrize("content, problem", [
    ('{"messages": []}', "chats.jsonl:1: no messages"),
    ('{"messages": [{"role": "bot", "content": "x"}]}', "role 'bot'"),
    ('{"messages": [{"role": "user"}]}', "no string 'content'"),
    ('{"messages": [{"role": "user", "content": "x"}]}', "no assistant turn"),
    ('{"messages": [{"role": "user", "content": "x"}, {"role": "system", "content": "y"}]}',
     "can only come first"),
    ('{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]}\n{"messages": 1}',
     "chats.jsonl:2: expected an object with a 'messages' list"),
])
def test_bad_dialogue_data_is_one_line_naming_the_line(tok, tmp_path, content, problem):
    path = tmp_path / "chats.jsonl"
    path.write_text(content + "\n", encoding="utf-8")
    with pytest.raises(UserError, match=problem.replace("[", r"\[").replace("(", r"\(")):
        prepare_data(tok, TrainConfig(train=str(path), test_split=0.5), 64, cache=TokenCache(tmp_path / "c"))


def test_a_checkpoint_trained_on_chats_chats_under_the_same_template(demo_dir, tmp_path):
    data = write_dialogues(tmp_path / "chats.jsonl", [CONVERSATION] * 20)
    session = load_session(str(demo_dir), device="cpu")
    assert getattr(session.tokenizer, "chat_template", None) is None   # a base model
    out = tmp_path / "chat-model"
    result = train(session, TrainConfig(train=str(data), template="plain-en", epochs=1, block_size=64,
                                        out=str(out), sample_tokens=4))
    assert result.out == str(out)
    restarted = load_session(str(out), device="cpu")   # a new process would load just this
    assert restarted.tokenizer.chat_template == BUILTIN["plain-en"].source
    chat = Chat(restarted)   # template "auto": the checkpoint's own
    assert chat.template.name == "plain-en"
    list(chat.send("Где спал кот?", SamplingSettings(seed=1, max_new_tokens=4)))
    assert chat.rendered().startswith("User: Где спал кот?\nAssistant:")


def stats_of(result) -> dict:
    assert result.returncode == 0, result.stderr
    return next(e for e in map(json.loads, result.stdout.splitlines()) if e["event"] == "stats")


def test_the_default_block_holds_whole_conversations(tmp_path):
    """The demo's preset block (32 tokens) is for texts; on dialogues a run's default block is
    the model's context, so no turn is dropped, and a smaller block chosen on purpose still
    says what it drops."""
    from core.base.paths import resource
    from tests.helpers import cli

    chats = str(resource("dialogues_ru.jsonl"))
    common = ("--model", "demo", "--max-steps", "1", "--jsonl")
    dialogues = stats_of(cli("train", "--train", chats, *common))
    assert dialogues["train"]["block_size"] == 256   # the demo's context
    assert dialogues["dialogue"]["train"]["dropped_turns"] == 0
    texts = stats_of(cli("train", "--train", str(resource("corpus_ru.txt")), *common))
    assert texts["train"]["block_size"] == 32
    small = stats_of(cli("train", "--train", chats, "--block-size", "32", *common))
    assert small["train"]["block_size"] == 32 and small["dialogue"]["train"]["dropped_turns"] > 0
