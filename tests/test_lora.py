"""LoRA through peft: only the adapter trains, its checkpoint is the adapter alone and resumes
exactly, the adapter folder loads everywhere `--model` does, export merges it into a plain
model with the same logits, and bad input is one line, exit 2, nothing written."""

import json
import shutil

import pytest
import torch

from core.inference.compare import before_after
from core.inference.sampling import SamplingSettings
from core.model.lora import LoraSpec, count_trainable, default_targets
from core.model.session import load_session
from core.training.config import TrainConfig, TrainControl
from core.training.events import Notice, Step
from core.training.loop import train
from tests.helpers import cli, tree_digest
from tests.test_training import weights


def lora_config(corpus_files, **kw):
    train_file, test_file = corpus_files
    base = dict(train=str(train_file), test=str(test_file), epochs=1, lr=1e-2, batch_size=8,
                block_size=32, seed=1, sample_tokens=8, lora=True, lora_r=4,
                lora_dropout=0.1)   # dropout on: a resume must continue its random stream
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def adapter_dir(corpus_files, tmp_path_factory, demo_dir):
    """A LoRA adapter trained on the demo (its B matrices are no longer zero)."""
    out = tmp_path_factory.mktemp("lora") / "adapter"
    session = load_session("demo", device="cpu")
    result = train(session, lora_config(corpus_files, out=str(out)))
    assert result.out == str(out)
    return out


def test_lora_trains_only_the_adapter(corpus_files, tmp_path, fresh_family_session):
    session = fresh_family_session
    before = weights(session)
    events = []
    result = train(session, lora_config(corpus_files, out=str(tmp_path / "out")),
                   on_event=lambda e: events.append(e))
    after = weights(session)
    adapter_keys = [k for k in after if "lora_" in k]
    assert adapter_keys
    for name, tensor in before.items():   # peft renames nothing it does not wrap
        wrapped = name.replace(".weight", ".base_layer.weight").replace(".bias", ".base_layer.bias")
        assert torch.equal(after.get(name, after.get(wrapped)), tensor), name
    assert any(not torch.all(after[k] == 0) for k in adapter_keys if "lora_B" in k)
    evals = [e for e in events if type(e).__name__ == "Eval"]
    assert evals[-1].eval_loss < evals[0].eval_loss - 0.05
    trainable = count_trainable(session.model, LoraSpec(4, 16.0, 0.05))
    assert sum(after[k].numel() for k in adapter_keys) == trainable
    assert any(isinstance(e, Notice) and f"{trainable:,}" in e.message for e in events)

    out = tmp_path / "out"
    assert result.out == str(out)
    names = {p.name for p in out.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors"} <= names
    assert not list(out.rglob("model*.safetensors"))   # never a copy of the base weights
    full_size = sum(t.numel() * t.element_size() for t in before.values())
    assert (out / "adapter_model.safetensors").stat().st_size < full_size / 4


def test_default_targets_per_architecture(demo_session, family_session):
    assert default_targets(demo_session.model) == ("c_attn", "c_proj", "c_fc")
    targets = default_targets(family_session.model)
    if family_session.info.model_class.startswith("Llama"):
        assert set(targets) == {"q_proj", "k_proj", "v_proj", "o_proj",
                                "gate_proj", "up_proj", "down_proj"}


def test_lora_resume_is_exact(corpus_files, tmp_path, demo_dir):
    straight = load_session("demo", device="cpu")
    train(straight, lora_config(corpus_files))

    part = load_session("demo", device="cpu")
    steps = []
    cut = train(part, lora_config(corpus_files, out=str(tmp_path / "ckpt")),
                on_event=lambda e: steps.append(e) if isinstance(e, Step) else None,
                control=TrainControl(cancelled=lambda: len(steps) >= 3))
    assert cut.stop_reason == "cancel" and cut.steps == 3

    resumed = load_session("demo", device="cpu")   # the base: resume puts the adapter back
    train(resumed, lora_config(corpus_files, resume=str(tmp_path / "ckpt")))
    expected = weights(straight)
    for name, tensor in weights(resumed).items():
        torch.testing.assert_close(tensor, expected[name], rtol=0, atol=1e-6, msg=name)


def test_adapter_folder_loads_in_info_and_generate(adapter_dir):
    info = cli("info", "--model", str(adapter_dir), "--json")
    assert info.returncode == 0, info.stderr
    shown = json.loads(info.stdout)
    assert shown["base_model"] == "demo" and shown["model"] == str(adapter_dir)

    session = load_session(str(adapter_dir), device="cpu")
    assert session.adapter is not None
    gen = cli("generate", "--model", str(adapter_dir), "--prompt", "Кот", "--seed", "3",
              "--max-new-tokens", "8", "--jsonl")
    assert gen.returncode == 0, gen.stderr
    done = json.loads(gen.stdout.splitlines()[-1])
    from core.inference.generation import GenerationDone, generate_stream
    *_, mine = generate_stream(session, "Кот", SamplingSettings(seed=3, max_new_tokens=8))
    assert isinstance(mine, GenerationDone) and done["ids"] == mine.ids
    base = load_session("demo", device="cpu")
    *_, plain = generate_stream(base, "Кот", SamplingSettings(greedy=True, max_new_tokens=8))
    *_, adapted = generate_stream(session, "Кот", SamplingSettings(greedy=True, max_new_tokens=8))
    assert plain.ids != adapted.ids   # the adapter is really on


def test_before_after_switches_the_adapter_off_without_a_copy(adapter_dir, demo_dir):
    session = load_session(str(adapter_dir), device="cpu")
    settings = SamplingSettings(seed=5, max_new_tokens=12)
    result = before_after(session, "Мама", settings)
    plain = before_after(load_session("demo", device="cpu"), "Мама", settings)
    assert result.before == plain.before      # the base: the adapter switched off
    assert result.after != result.before
    assert session.base_state is None and session.base_model is None   # no copy was made


def test_export_merges_into_a_plain_model_with_the_same_logits(adapter_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    out = tmp_path / "merged"
    result = cli("export", "--model", str(adapter_dir), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert (out / "model.safetensors").exists() and not (out / "adapter_config.json").exists()
    plain = AutoModelForCausalLM.from_pretrained(out).eval()
    adapted = load_session(str(adapter_dir), device="cpu")
    ids = adapted.tokenizer("Кошка спала на окне, а собака гуляла", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        expected = adapted.model(input_ids=ids).logits
        got = plain(input_ids=ids).logits
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    base = load_session("demo", device="cpu")
    with torch.no_grad():
        assert not torch.allclose(base.model(input_ids=ids).logits, got, atol=1e-3)


def _one_line_exit_2(result):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rugpt-tui: error:"), result.stderr
    return lines[0]


def test_bad_lora_input_is_one_line_and_writes_nothing(corpus_files, tmp_path, adapter_dir):
    from core.store.database import Store

    train_file, _ = corpus_files
    out = tmp_path / "never"
    common = ("train", "--model", "demo", "--train", str(train_file), "--out", str(out), "--lora")
    line = _one_line_exit_2(cli(*common, "--lora-targets", "c_attn,q_proj"))
    assert "q_proj" in line and "matches no layer" in line
    line = _one_line_exit_2(cli(*common, "--lora-r", "0"))
    assert "lora r 0" in line
    assert not out.exists()
    assert Store.open().runs() == []   # not even a failed run in the workspace

    orphan = tmp_path / "orphan"
    shutil.copytree(adapter_dir, orphan)
    config = json.loads((orphan / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = str(tmp_path / "gone-base")
    (orphan / "adapter_config.json").write_text(json.dumps(config))
    before = tree_digest(orphan)
    line = _one_line_exit_2(cli("info", "--model", str(orphan)))
    assert "gone-base" in line and "base model" in line
    _one_line_exit_2(cli("export", "--model", str(orphan), "--out", str(tmp_path / "merged")))
    _one_line_exit_2(cli("train", "--model", str(orphan), "--train", str(train_file),
                         "--out", str(out)))
    assert not (tmp_path / "merged").exists() and not out.exists()
    assert tree_digest(orphan) == before


def test_export_refuses_a_folder_of_the_users_files(adapter_dir, tmp_path):
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine")
    before = tree_digest(theirs)
    _one_line_exit_2(cli("export", "--model", str(adapter_dir), "--out", str(theirs)))
    _one_line_exit_2(cli("export", "--model", "demo", "--out", str(tmp_path / "x")))
    assert tree_digest(theirs) == before and not (tmp_path / "x").exists()


def test_a_rank_above_the_layers_is_one_line_before_anything_is_allocated(demo_session):
    """The demo's layers are 64 wide: r 64 is the most an update of them can use; r 10**8
    would have allocated gigabytes of adapter and died in the allocator."""
    from core.base.errors import UserError

    model = demo_session.model
    assert count_trainable(model, LoraSpec(r=64, alpha=16, dropout=0.0, targets=None)) > 0
    with pytest.raises(UserError, match=r"^lora r 100000000: above the rank the adapted layers "
                                        r"can take \(64 here\): at most 64$"):
        count_trainable(model, LoraSpec(r=10**8, alpha=16, dropout=0.0, targets=None))
