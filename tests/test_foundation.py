import json
import re
import subprocess
import sys
import time

import pytest
import torch

from core.base.errors import UserError
from core.base.settings import DEFAULT_MODEL
from tests.helpers import ROOT, cli, run_cli


def test_core_never_imports_textual():
    code = ("import pkgutil, importlib, sys, core\n"
            "for m in pkgutil.walk_packages(core.__path__, 'core.'):\n"
            "    importlib.import_module(m.name)\n"
            "print('textual' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_headless_cli_never_imports_textual():
    """Nor does what the app's command does before the early first frame (tui.process.early_frame)."""
    code = ("import sys, tui.cli.main, tui.cli.parser, tui.cli.commands, tui.render.chips, "
            "core.store.workspace, tui.process.early_frame; print('textual' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_app_module_imports_without_torch():
    """The first frame must not wait for torch/transformers: the app module does not import them."""
    code = "import sys, tui.shell.app; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False False"


def test_demo_build_is_deterministic(tmp_path):
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    from core.model.demo import build_demo_model

    a = build_demo_model(tmp_path / "a")
    b = build_demo_model(tmp_path / "b")
    tok_a, tok_b = AutoTokenizer.from_pretrained(a), AutoTokenizer.from_pretrained(b)
    assert tok_a.get_vocab() == tok_b.get_vocab()
    assert 2000 <= len(tok_a) <= 5000
    text = "Модель получает на вход последовательность токенов."
    assert tok_a(text)["input_ids"] == tok_b(text)["input_ids"]
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    # special tokens laid out as in current ruGPT-3
    assert (tok_a.pad_token_id, tok_a.bos_token_id, tok_a.eos_token_id) == (0, 1, 2)


def test_demo_build_leaves_global_rng_alone(tmp_path):
    from core.model.demo import build_demo_model

    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    build_demo_model(tmp_path / "m")
    assert torch.equal(torch.rand(3), expected)


def test_load_from_folder_path(demo_dir):
    from core.model.session import load_session

    session = load_session(str(demo_dir), device="cpu")
    info = session.info
    assert info.model_class == "GPT2LMHeadModel"
    assert info.parameters == sum(p.numel() for p in session.model.parameters())
    assert info.parameters > 100_000
    assert info.device == "cpu" and info.dtype == "float32"
    assert info.vocab_size == session.model.config.vocab_size == 3000
    assert info.max_positions == 256


def test_pad_token_is_added_without_masking_eos(tmp_path, demo_dir):
    """A tokenizer with no pad and no <pad> in its vocabulary reuses EOS as the pad id;
    the EOS id stays the EOS id and padding is known from the attention mask."""
    from transformers import AutoTokenizer

    from core.model.session import ensure_pad_token

    tok = AutoTokenizer.from_pretrained(demo_dir)
    tok.pad_token = None
    assert ensure_pad_token(tok) == "vocab"  # "<pad>" is in the vocabulary: use it
    assert tok.pad_token == "<pad>" and tok.pad_token_id != tok.eos_token_id

    # An old-style tokenizer: everything is one end-of-text token, no pad anywhere.
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.WordLevel({"<|endoftext|>": 0, "а": 1, "б": 2}, unk_token="<|endoftext|>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    old = PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="<|endoftext|>")
    assert old.pad_token is None
    assert ensure_pad_token(old) == "eos"
    batch = old(["а б <|endoftext|>", "а"], padding=True)
    assert batch["input_ids"][0][-1] == old.eos_token_id
    assert batch["attention_mask"][0] == [1, 1, 1]   # the real EOS is not padding
    assert batch["attention_mask"][1] == [1, 0, 0]


def test_bad_model_id_is_one_clear_line():
    result = run_cli("info", "--model", "nobody-has/this-model-xyz", "--json")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "nobody-has/this-model-xyz" in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("make", ["empty", "bad_config", "file"])
def test_broken_model_folder(tmp_path, make):
    from core.model.session import load_session

    target = tmp_path / "model"
    if make == "file":
        target.write_text("not a model")
    else:
        target.mkdir()
        if make == "bad_config":
            (target / "config.json").write_text("{ this is not json")
    with pytest.raises(UserError) as err:
        load_session(str(target), device="cpu")
    assert str(target) in str(err.value) or "cannot load" in str(err.value)
    assert "\n" not in str(err.value)


def test_offline_fallback_to_demo_is_fast(tmp_path, monkeypatch, demo_dir):
    """Default model, no network, empty hub cache: the demo model, with a notice, in < 10 s."""
    from core.model.session import load_session

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub-cache"))
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "empty-hub-cache"))
    start = time.monotonic()
    session = load_session(DEFAULT_MODEL, device="cpu")
    assert time.monotonic() - start < 10
    assert session.info.model == "demo"
    assert session.notice and "demo" in session.notice and DEFAULT_MODEL in session.notice


def test_unreachable_hub_probe_is_bounded(monkeypatch):
    """Without HF_HUB_OFFLINE, an unreachable endpoint is detected within the probe timeout."""
    import huggingface_hub.constants as c

    from core.model.session import hub_reachable

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(c, "ENDPOINT", "http://127.0.0.1:9")  # discard port: nothing listens
    start = time.monotonic()
    assert hub_reachable(timeout=2.0) is False
    assert time.monotonic() - start < 3


def test_info_json_cli(family_model):
    result = cli("info", "--model", family_model, "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    for key, kind in [("model", str), ("model_class", str), ("tokenizer_class", str),
                      ("parameters", int), ("device", str), ("dtype", str),
                      ("vocab_size", int), ("max_positions", int)]:
        assert isinstance(info[key], kind), key
    from transformers import AutoModelForCausalLM

    from core.model.demo import demo_model_dir

    folder = demo_model_dir() if family_model == "demo" else family_model
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert info["parameters"] == sum(p.numel() for p in model.parameters())
    assert info["model"] == family_model and info["model_class"] == type(model).__name__
    assert info["vocab_size"] == model.config.vocab_size and info["max_positions"] == 256
    assert info["model_class"] == {"demo": "GPT2LMHeadModel"}.get(family_model, "LlamaForCausalLM")


def test_asking_for_a_device_that_is_not_there_is_exit_2(monkeypatch):
    """On a machine without CUDA (made so here, so the test runs on a GPU box too)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = cli("info", "--model", "demo", "--device", "cuda")
    assert result.returncode == 2
    assert "--device cuda" in result.stderr


def test_every_setting_is_declared_once_and_drawn_from_its_declaration():
    """TrainConfig / SamplingSettings take each default from core.base.settings, and the command
    line offers each declared setting under its flag, with the declared choices."""
    from dataclasses import fields

    from core.base.errors import UserError
    from core.base.settings import SAMPLING_SETTINGS, TRAIN_SETTINGS
    from core.inference.sampling import SamplingSettings
    from core.training.config import TrainConfig
    from tui.cli.parser import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for settings, config, command in ((TRAIN_SETTINGS, TrainConfig(train="x"), "train"),
                                      (SAMPLING_SETTINGS, SamplingSettings(), "generate")):
        options = {opt: action for action in commands[command]._actions for opt in action.option_strings}
        assert {s.name for s in settings} <= {f.name for f in fields(config)}
        for s in settings:
            assert getattr(config, s.name) == s.default, s.name
            if s.cli:
                assert options[s.flag].default is None, s.flag   # "not given": core fills it in
                assert tuple(options[s.flag].choices or ()) == s.choices
    assert "--pad" in {o for a in commands["train"]._actions for o in a.option_strings}
    with pytest.raises(UserError, match="^lr 0: must be > 0$"):
        TrainConfig(train="x", lr=0).validate()
    with pytest.raises(UserError, match=r"^top-p 1.5: must be in \(0, 1\]$"):
        SamplingSettings(top_p=1.5).validate()
    SamplingSettings(temperature=0, greedy=True).validate()   # greedy never divides by T


def test_no_float_setting_takes_a_value_that_is_not_finite():
    """'nan', 'inf' and '1e999' all read as floats; each float setting refuses them with a
    line naming it, on the command line, in the panes and in a sweep."""
    from core.base.errors import UserError
    from core.base.settings import SAMPLING_SETTINGS, TRAIN_SETTINGS

    floats = [s for s in TRAIN_SETTINGS + SAMPLING_SETTINGS if s.kind is float]
    assert {"lr", "epochs", "temperature", "top_p"} <= {s.name for s in floats}
    for setting in floats:
        for raw in ("nan", "inf", "-inf", "1e999"):
            with pytest.raises(UserError, match=f"^{setting.named} .*: must be a finite number$"):
                setting.check(setting.parse(raw))
    result = cli("generate", "--model", "demo", "--prompt", "x", "--temperature", "nan")
    assert result.returncode == 2 and "temperature nan: must be a finite number" in result.stderr


def test_settings_stop_where_the_libraries_beneath_them_would_fail():
    """Values each library beneath refuses or overflows on — a negative or 2**64-sized seed,
    a temperature whose division overflows float32, a batch past islice — are one line
    naming the setting, before anything starts."""
    from core.base.errors import UserError
    from core.inference.sampling import SamplingSettings
    from core.training.config import TrainConfig

    refused = {
        "seed -5: must be in [0, 4294967295]": TrainConfig(train="x", seed=-5),
        "seed 4294967296: must be in [0, 4294967295]": TrainConfig(train="x", seed=2**32),
        "batch size 1048577: must be in [1, 1048576]": TrainConfig(train="x", batch_size=2**20 + 1),
        "grad accum 1048577: must be in [1, 1048576]": TrainConfig(train="x", grad_accum=2**20 + 1),
        "epochs 1e+300: must be in (0, 1e+06]": TrainConfig(train="x", epochs=1e300),
        "lora alpha 1e+300: must be in (0, 1e+06]": TrainConfig(train="x", lora_alpha=1e300),
        "seed 9223372036854775808: must be in [0, 9223372036854775807]": SamplingSettings(seed=2**63),
        "temperature 1e-300: must be ≥ 1e-06": SamplingSettings(temperature=1e-300),
        "repetition penalty 1e-300: must be ≥ 1e-06": SamplingSettings(repetition_penalty=1e-300),
    }
    for message, settings in refused.items():
        with pytest.raises(UserError) as caught:
            settings.validate()
        assert str(caught.value) == message
    SamplingSettings(seed=2**63 - 1, temperature=1e-6, repetition_penalty=1e-6).validate()
    TrainConfig(train="x", seed=2**32 - 1, batch_size=2**20, epochs=1e6).validate()
    result = cli("train", "--model", "demo", "--train", "x", "--seed", "-5")
    assert result.returncode == 2 and "seed -5: must be in [0, 4294967295]" in result.stderr


@pytest.mark.parametrize("args, error", [
    (("inspect", "--model", "demo", "--prompt", "x", "--top", "0"), "argument --top: 0: must be in [1, "),
    (("history", "--limit", "-1"), "argument --limit: -1: must be in [1, "),
    (("runs", "--sweep", str(2**63)), f"argument --sweep: {2**63}: must be in [1, {2**63 - 1}]"),
    (("chats", "--export", "x"), "argument --export: 'x' is not a whole number"),
    (("queue", "--remove", str(10**21)), f"argument --remove: {10**21}: must be in [1, "),
    (("serve", "--port", "99999999"), "argument --port: 99999999: must be in [0, 65535]"),
])
def test_the_commands_own_numbers_are_checked_where_they_are_read(args, error):
    """Each had reached a library that failed on it (an index, SQLite's 64 bits, bind())."""
    result = cli(*args)
    assert result.returncode == 2 and error in result.stderr and "internal error" not in result.stderr


def test_a_model_path_that_is_no_folder_is_named_for_what_it_is(tmp_path):
    import os

    from core.base.errors import UserError
    from core.model.session import resolve_source

    text, pipe = tmp_path / "notes.txt", tmp_path / "pipe"
    text.write_text("x", encoding="utf-8")
    os.mkfifo(pipe)
    for path, kind in ((text, "a file"), (pipe, "a named pipe (FIFO)"), ("/dev/null", "a character device")):
        with pytest.raises(UserError, match=rf"^{path}: {re.escape(kind)}, not a model folder; "):
            resolve_source(str(path))


def test_text_that_is_not_utf8_is_one_line_naming_where_it_came_from(demo_dir):
    """A terminal in another encoding sends bytes that are not UTF-8: Python keeps them as
    lone surrogates, which the tokenizer refused with a TypeError."""
    result = run_cli("generate", "--model", "demo", "--prompt", "ok\udcff")   # argv gets 0xff
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == "rugpt-tui: error: --prompt: not valid UTF-8 (byte 0xff)"
    chat = subprocess.run([sys.executable, "-m", "tui.cli", "chat", "--model", "demo",
                           "--max-new-tokens", "2", "--no-save"], input="Привет\n".encode() + b"\xfe\n",
                          capture_output=True, cwd=ROOT, timeout=120)
    assert chat.returncode == 2
    assert chat.stderr.decode().strip().endswith("rugpt-tui: error: stdin line 2: not valid UTF-8 (byte 0xfe)")
