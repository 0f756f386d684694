"""Chat: templates render exactly what `apply_chat_template` renders, a reply reusing the KV
cache of earlier turns equals one from a full prefill, and conversations are stored."""

import io
import json

import pytest
import torch

from core.base.errors import UserError
from core.data.templates import BUILTIN, check_messages, render, template_for
from core.inference.chat import Chat, ChatDone
from core.inference.generation import TokenEvent
from core.inference.sampling import SamplingSettings
from core.model.session import load_session
from tui.cli.main import main as cli_main

ZEPHYR_LIKE = ("{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}{{ eos_token }}\n"
               "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}")
MESSAGES = [{"role": "user", "content": "Привет!"}, {"role": "assistant", "content": "Здравствуй."},
            {"role": "user", "content": "Кот спал?"}]


@pytest.fixture
def session(demo_dir):
    return load_session(str(demo_dir), device="cpu")


def test_a_tokenizers_own_template_renders_as_apply_chat_template(session):
    tok = session.tokenizer
    tok.chat_template = ZEPHYR_LIKE
    template = template_for(tok, "auto")
    assert template.name == "tokenizer"
    chat = Chat(session, system="Отвечай коротко.", messages=MESSAGES)
    messages = [{"role": "system", "content": "Отвечай коротко."}, *MESSAGES]
    assert chat.rendered() == tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    expected = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
    assert chat.prompt_ids() == expected["input_ids"]


def test_the_built_in_formats(session):
    tok = session.tokenizer
    tok.chat_template = None
    assert template_for(tok, "auto").name == "plain-ru"   # a base model has no template
    eos = tok.eos_token
    messages = [{"role": "system", "content": "Будь краток."}, *MESSAGES]
    assert render(tok, messages, BUILTIN["plain-ru"]) == (
        f"Будь краток.\n\nПользователь: Привет!\nАссистент: Здравствуй.{eos}\n"
        "Пользователь: Кот спал?\nАссистент:")
    assert render(tok, MESSAGES, BUILTIN["plain-en"]) == (
        f"User: Привет!\nAssistant: Здравствуй.{eos}\nUser: Кот спал?\nAssistant:")
    assert render(tok, MESSAGES[:1], BUILTIN["chatml"]) == (
        "<|im_start|>user\nПривет!<|im_end|>\n<|im_start|>assistant\n")
    assert render(tok, MESSAGES[:2], BUILTIN["plain-ru"], generation_prompt=False).endswith(f"{eos}\n")
    with pytest.raises(UserError, match="--template nope"):
        template_for(tok, "nope")


@pytest.mark.parametrize("messages, problem", [
    ([], "no messages"),
    ([{"role": "robot", "content": "x"}], "role 'robot'"),
    ([{"role": "user", "content": 5}], "no string 'content'"),
    ([{"role": "user", "content": "a"}, {"role": "system", "content": "b"}], "can only come first"),
])
def test_messages_a_template_cannot_render_are_refused(messages, problem):
    with pytest.raises(UserError, match=problem):
        check_messages(messages)


def steps(events):
    return [e for e in events if isinstance(e, TokenEvent)], next(e for e in events if isinstance(e, ChatDone))


def test_a_reply_reusing_the_cache_equals_one_from_a_full_prefill(session):
    settings = SamplingSettings(seed=3, max_new_tokens=12)
    chat = Chat(session)
    first_tokens, first = steps(list(chat.send("Привет!", settings)))
    assert first.turn == 1 and first.reused_tokens == 0
    tokens, done = steps(list(chat.send("Кот спал?", settings)))
    assert done.turn == 2 and done.reused_tokens > 10 and done.prompt_tokens == len(chat.prompt_ids(
        chat.messages[:-1]))
    fresh = Chat(session, messages=chat.messages[:-1])   # the same conversation, no cache
    fresh_tokens, fresh_done = steps(list(fresh.answer(settings)))
    assert fresh_done.reused_tokens == 0 and fresh_done.text == done.text
    assert [t.id for t in tokens] == [t.id for t in fresh_tokens]
    for a, b in zip(tokens, fresh_tokens):   # the distributions, not only the draws
        assert [i for i, _ in a.top] == [i for i, _ in b.top]
        assert torch.allclose(torch.tensor([p for _, p in a.top]), torch.tensor([p for _, p in b.top]),
                              atol=1e-5)


def test_changed_weights_make_the_cache_stale(session):
    settings = SamplingSettings(seed=1, max_new_tokens=4)
    chat = Chat(session)
    list(chat.send("Привет!", settings))
    _, done = steps(list(chat.regenerate(settings)))
    assert done.reused_tokens > 0   # the prompt again: from the cache
    with session.lock, torch.no_grad():
        next(session.model.parameters()).add_(0.01)
        session.weights_version += 1
    _, done = steps(list(chat.regenerate(settings)))
    assert done.reused_tokens == 0


def test_regenerate_and_edit_replace_the_last_turn(session):
    settings = SamplingSettings(seed=1, max_new_tokens=4)
    chat = Chat(session)
    list(chat.send("Привет!", settings))
    list(chat.regenerate(SamplingSettings(seed=2, max_new_tokens=4)))
    assert [m["role"] for m in chat.messages] == ["user", "assistant"]
    list(chat.edit_last("Добрый вечер!", settings))
    assert chat.messages[0]["content"] == "Добрый вечер!" and len(chat.messages) == 2


def test_a_conversation_longer_than_the_context_drops_its_oldest_turns(session):
    long = "Утром кошка спала в саду. " * 8
    messages = []
    for i in range(12):
        messages += [{"role": "user", "content": f"{i}: {long}"}, {"role": "assistant", "content": long}]
    chat = Chat(session, system="Система.", messages=messages[:-1])
    events = list(chat.answer(SamplingSettings(seed=1, max_new_tokens=16)))
    notice = next(e for e in events if not isinstance(e, (TokenEvent, ChatDone)))
    assert "oldest" in notice.message
    done = events[-1]
    assert done.dropped_messages > 0 and done.prompt_tokens + 16 <= session.max_positions
    kept, ids = chat.fitted(16)
    assert chat.conversation(kept)[0] == {"role": "system", "content": "Система."}   # the system stays
    assert kept[0]["role"] == "user" and kept[-2:] == chat.messages[-2:]   # the newest stay


def test_chat_and_chats_on_the_command_line(demo_dir, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("Привет!\n\nКот спал?\n"))
    assert cli_main(["chat", "--model", "demo", "--seed", "1", "--max-new-tokens", "6", "--jsonl"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    done = [line for line in lines if line.get("done")]
    assert [d["turn"] for d in done] == [1, 2] and done[1]["reused_tokens"] > 0
    assert set(done[0]) >= {"done", "turn", "text", "new_tokens", "prompt_tokens", "reused_tokens",
                            "stop_reason", "tokens_per_s"}
    assert all(set(line) >= {"step", "id", "text", "prob", "top"} for line in lines if not line.get("done"))
    assert cli_main(["chats", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["turns"] == 2 and row["title"] == "Привет!" and row["model"] == "demo"
    assert cli_main(["chats", "--export", str(row["id"]), "--format", "jsonl"]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert [m["role"] for m in exported["messages"]] == ["user", "assistant", "user", "assistant"]
    assert exported["messages"][3]["content"] == done[1]["text"]
    assert cli_main(["chats", "--export", "99"]) == 2

    monkeypatch.setattr("sys.stdin", io.StringIO("Ещё?\n"))
    assert cli_main(["chat", "--model", "demo", "--max-new-tokens", "2", "--no-save"]) == 0
    capsys.readouterr()
    assert cli_main(["chats", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 1   # --no-save kept nothing
