"""`rugpt-tui eval`: models scored on held-out data. Its losses equal a computation written
here with `transformers` alone (each sample framed as training frames it, cut into windows of
the block, every token after a window's first predicted), on two families; perplexity is
exp(loss); results are kept in the workspace; bad input is one line and exit 2."""

import json
import math

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from core.data.dialogues import encode_dialogue
from core.data.templates import template_for
from core.model.demo import demo_model_dir
from core.store.database import Store
from tests.helpers import cli

TEXTS = ["Кошка спала на окне, а собака гуляла во дворе.",
         "Утром бабушка купила хлеб и молоко.",
         "Мальчик читал книгу у реки, а потом рисовал лес, горы и облака над ними весь день."]
DIALOGUES = [{"messages": [{"role": "user", "content": "Где спал кот?"},
                           {"role": "assistant", "content": "Кот спал на окне."}]},
             {"messages": [{"role": "user", "content": "Расскажи про пса."},
                           {"role": "assistant", "content": "Пёс гулял у реки."},
                           {"role": "user", "content": "А потом?"},
                           {"role": "assistant", "content": "Потом он спал."}]}]


def model_folder(name: str) -> str:
    return str(demo_model_dir()) if name == "demo" else name


def by_hand(folder: str, samples: list[tuple[list[int], list[int]]], block: int) -> tuple[float, int]:
    """The token-weighted loss, each window through the model's own `labels` loss."""
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    total, count = 0.0, 0
    for ids, scored in samples:
        for start in range(0, len(ids), block):
            window = torch.tensor([ids[start:start + block]])
            labels = torch.tensor([[i if s else -100 for i, s in
                                    zip(ids[start:start + block], scored[start:start + block])]])
            n = int((labels[:, 1:] != -100).sum())
            if window.shape[1] < 2 or n == 0:
                continue
            with torch.no_grad():
                total += float(model(input_ids=window, labels=labels).loss) * n
            count += n
    return total / count, count


def framed_texts(folder: str) -> list[tuple[list[int], list[int]]]:
    tok = AutoTokenizer.from_pretrained(folder)
    out = []
    for text in TEXTS:
        ids = tok(text)["input_ids"]
        ids = ids if ids[-1] == tok.eos_token_id else ids + [tok.eos_token_id]
        out.append((ids, [1] * len(ids)))
    return out


@pytest.mark.parametrize("block", [256, 8])
def test_eval_losses_equal_an_independent_computation(family_model, tmp_path, block):
    data = tmp_path / "held-out.txt"
    data.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    result = cli("eval", "--model", family_model, "--data", str(data), "--block-size", str(block), "--json")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    loss, tokens = by_hand(model_folder(family_model), framed_texts(model_folder(family_model)), block)
    assert shown["data"] == str(data) and shown["tokens"] == tokens
    (scored,) = shown["models"]
    assert scored["model"] == family_model
    assert scored["loss"] == pytest.approx(loss, rel=1e-5)
    assert scored["perplexity"] == pytest.approx(math.exp(scored["loss"]), rel=1e-12)


def test_dialogues_score_the_replies_only_and_models_side_by_side(demo_dir, tmp_path):
    data = tmp_path / "chats.jsonl"
    data.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in DIALOGUES), encoding="utf-8")
    trained = tmp_path / "trained"
    run = cli("train", "--model", "demo", "--train", str(data), "--epochs", "20", "--out", str(trained))
    assert run.returncode == 0, run.stderr
    result = cli("eval", "--model", "demo", "--model", str(trained), "--data", str(data), "--json")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert [m["model"] for m in shown["models"]] == ["demo", str(trained)]
    for scored, folder in zip(shown["models"], (model_folder("demo"), str(trained))):
        tok = AutoTokenizer.from_pretrained(folder)
        template = template_for(tok, "auto")
        samples = [encode_dialogue(tok, template, d["messages"], 1 << 30)[:2] for d in DIALOGUES]
        loss, tokens = by_hand(folder, samples, 256)
        assert sum(sum(mask) for _, mask in samples) == tokens   # the replies' tokens…
        assert sum(len(ids) for ids, _ in samples) > 2 * tokens  # …not the prompts
        assert scored["loss"] == pytest.approx(loss, rel=1e-5) and shown["tokens"] == tokens
    assert shown["models"][1]["loss"] < shown["models"][0]["loss"]   # it learned the replies
    kept = Store.open().scores()
    assert [(s["model"], s["tokens"]) for s in kept] == [(str(trained), shown["tokens"]),
                                                         ("demo", shown["tokens"])]
    assert kept[0]["loss"] == pytest.approx(shown["models"][1]["loss"])
    table = cli("eval", "--model", "demo", "--data", str(data))
    assert table.returncode == 0 and "perplexity" in table.stdout and "demo" in table.stdout


@pytest.mark.parametrize("case", ["no such model", "no text", "missing data", "a device", "block too big"])
def test_bad_input_is_one_line_and_exit_2(demo_dir, tmp_path, case):
    good = tmp_path / "ok.txt"
    good.write_text(TEXTS[0] + "\n", encoding="utf-8")
    blank = tmp_path / "blank.txt"
    blank.write_text("\n  \n\n", encoding="utf-8")
    args = {"no such model": ["--model", str(tmp_path / "nowhere"), "--data", str(good)],
            "no text": ["--model", "demo", "--data", str(blank)],
            "missing data": ["--model", "demo", "--data", str(tmp_path / "missing.txt")],
            "a device": ["--model", "demo", "--data", "/dev/zero"],
            "block too big": ["--model", "demo", "--data", str(good), "--block-size", "4096"]}[case]
    result = cli("eval", *args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rugpt-tui: error: "), result.stderr
    assert Store.open().scores() == []


def test_a_model_whose_template_cannot_frame_the_dialogues_is_one_line(demo_dir, tmp_path):
    """A tokenizer whose chat template renders a turn differently once later turns follow
    cannot frame dialogues as training does: one line naming the template, exit 2."""
    import shutil

    odd = tmp_path / "odd-template"
    shutil.copytree(demo_dir, odd)
    config = json.loads((odd / "tokenizer_config.json").read_text(encoding="utf-8"))
    config["chat_template"] = "{{ messages[-1]['content'] }}"   # only the last message
    (odd / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    data = tmp_path / "chats.jsonl"
    data.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in DIALOGUES), encoding="utf-8")
    result = cli("eval", "--model", str(odd), "--data", str(data))
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "template" in lines[0] and "differently" in lines[0], result.stderr
