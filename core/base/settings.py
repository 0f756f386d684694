"""Every setting a user can choose, declared once: its type, default, bounds and help.

The command line (`tui.cli.options`) and the panes' fields are both drawn from these
declarations, `TrainConfig` and `SamplingSettings` take their defaults and checks from them,
and the workspace's settings file stores them by name. Per-model training presets live in
`TRAIN_PRESETS`, the one place that says how the demo trains differently from a real model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from core.base.errors import UserError

DEFAULT_MODEL = "ai-forever/rugpt3small_based_on_gpt2"   # the app's and every command's default
DEFAULT_THEME = "textual-dark"   # the app's colours until the user picks others


@dataclass(frozen=True)
class Setting:
    name: str                        # the field of TrainConfig / SamplingSettings
    kind: type                       # int | float | str | bool
    default: Any
    help: str
    label: str = ""                  # the pane's short field label
    title: str = ""                  # how messages name it (default: the name, spaced)
    choices: tuple = ()
    low: float | None = None         # value ≥ low (> low when low_open)
    low_open: bool = False
    high: float | None = None        # value ≤ high (< high when high_open)
    high_open: bool = False
    optional: bool = False           # None (an empty field) is allowed
    fmt: str | None = None           # how a field shows the value: a format spec, or "e"
    cli: bool = True                 # offered on the command line
    off_flag: str | None = None      # a bool's flag that turns it off (--pad for --pack)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def named(self) -> str:
        return self.title or self.name.replace("_", " ")

    def parse(self, raw: str) -> Any:
        """A field's text as a value, or a one-line error naming the field."""
        raw = raw.strip()
        if self.optional and not raw:
            return None
        if self.kind is str:
            return raw
        try:
            return self.kind(raw)
        except ValueError:
            raise UserError(f"{self.named}: {raw!r} is not a number") from None

    def check(self, value: Any) -> None:
        if value is None and self.optional:
            return
        if isinstance(value, float) and not math.isfinite(value):   # 'nan', 'inf', '1e999'
            raise UserError(f"{self.named} {value}: must be a finite number")
        if self.choices and value not in self.choices:
            raise UserError(f"{self.named} {value}: one of {', '.join(map(str, self.choices))}")
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            raise UserError(f"{self.named} {value}: must be {self._bounds()}")
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            raise UserError(f"{self.named} {value}: must be {self._bounds()}")

    def _bounds(self) -> str:
        def shown(bound: float | None) -> str:
            return str(bound) if isinstance(bound, int) else f"{bound:g}"

        if self.high is None:
            return f"{'>' if self.low_open else '≥'} {shown(self.low)}"
        if self.low is None:
            return f"{'<' if self.high_open else '≤'} {shown(self.high)}"
        return (f"in {'(' if self.low_open else '['}{shown(self.low)}, "
                f"{shown(self.high)}{')' if self.high_open else ']'}")

    def show(self, value: Any) -> str:
        """A value as a field shows it."""
        if value is None:
            return ""
        if self.fmt == "e":   # 5e-05 → 5e-5
            return f"{value:.0e}".replace("e-0", "e-").replace("e+0", "e")
        return format(value, self.fmt) if self.fmt else str(value)


def by_name(settings: tuple[Setting, ...]) -> dict[str, Setting]:
    return {s.name: s for s in settings}


def as_flags(settings: tuple[Setting, ...], values: dict[str, Any]) -> list[str]:
    """The command-line options that give these settings' values (those the command line
    offers; None: not given), so that another process runs with exactly them."""
    flags: list[str] = []
    for setting in settings:
        value = values.get(setting.name)
        if not setting.cli or value is None:
            continue
        if setting.kind is bool:
            if value:
                flags.append(setting.flag)
            elif setting.off_flag:
                flags.append(setting.off_flag)
        else:
            flags += [setting.flag, repr(value) if setting.kind is float else str(value)]
    return flags


def check_all(settings: tuple[Setting, ...], values: object, skip: tuple[str, ...] = ()) -> None:
    for setting in settings:
        if setting.name not in skip:
            setting.check(getattr(values, setting.name))


# -- the model: where it runs and in what precision -------------------------------------------

DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "bfloat16", "float16")
MIXED_PRECISIONS = ("auto", "no", "bf16", "fp16")

# -- sampling (`generate`, the Generate pane) -----------------------------------------------------

SAMPLING_SETTINGS = (
    # Lower bounds of 1e-6: far below any useful value, and far above where dividing a logit
    # overflows float32 into an infinity the softmax turns into NaN.
    Setting("temperature", float, 1.0, "divide the logits by T before the softmax",
            label="temperature", low=1e-6),
    Setting("top_k", int, 50, "keep the K best tokens (0: off)", label="top-k", title="top-k",
            low=0),
    Setting("top_p", float, 0.95, "keep the best tokens whose mass reaches P (1: off)",
            label="top-p", title="top-p", low=0, low_open=True, high=1),
    Setting("repetition_penalty", float, 1.0, "make tokens seen so far less likely (1: off)",
            label="rep. penalty", low=1e-6),
    Setting("max_new_tokens", int, 64, "tokens to generate at most", label="max new", low=1),
    Setting("seed", int, None, "fix the sampler's seed (empty: a new one each run)",
            label="seed", optional=True, low=0, high=2**63 - 1),   # what the workspace stores
    Setting("greedy", bool, False, "always take the most probable token", label="greedy"),
)

# -- training (`train`, the Train pane) -------------------------------------------------------------

TRAIN_SETTINGS = (
    Setting("test_split", float, 0.1, "held-out share when --test is not given",
            low=0, low_open=True, high=1, high_open=True),
    Setting("epochs", float, 2.0, "passes over the data", label="epochs",
            low=0, low_open=True, high=1e6, fmt="g"),
    Setting("lr", float, 5e-5, "peak learning rate", label="lr",
            low=0, low_open=True, fmt="e"),
    Setting("batch_size", int, 8, "samples per step", label="batch", low=1, high=2**20),
    Setting("block_size", int, None, "tokens per sample (none: the context, up to 1024)",
            label="block",
            optional=True, low=2),
    Setting("pack", bool, True, "pack texts into full blocks (--pad: one text a row)", label="pack",
            off_flag="--pad"),
    Setting("grad_accum", int, 1, "batches per optimizer step", low=1, high=2**20),
    Setting("warmup", float, 0.05, "warmup share of the steps", low=0, high=1, high_open=True),
    Setting("schedule", str, "cosine", "learning-rate schedule after the warmup",
            choices=("cosine", "linear", "constant")),
    Setting("weight_decay", float, 0.0, "AdamW weight decay", low=0, cli=False),
    Setting("clip", float, 1.0, "gradient norm clip (0: off)", low=0, cli=False),
    Setting("eval_every", int, 0, "also evaluate every N steps (0: once per epoch)",
            label="eval every", low=0),
    Setting("eval_tokens", int, 65536, "held-out tokens an evaluation reads: the same seeded "
            "sample every time (0: the whole held-out set)", low=0),
    Setting("mixed_precision", str, "auto", "autocast precision (auto: bf16 on a GPU that has it)",
            label="precision", choices=MIXED_PRECISIONS),
    # numpy's generators take no negative seed; an epoch's order seeds torch with
    # seed·1,000,003 + epoch, which must stay below 2**64
    Setting("seed", int, 0, "seed of the data order, dropout and samples", low=0, high=2**32 - 1),
    Setting("template", str, "auto", "chat template for dialogue data (auto: the tokenizer's "
            "own, else plain-ru)", choices=("auto", "plain-ru", "plain-en", "chatml")),
    Setting("train_on_prompt", bool, False, "dialogues: learn the whole conversation, not only "
            "the assistant's replies"),
    Setting("lora", bool, False, "train a LoRA adapter (peft) instead of every weight",
            label="LoRA"),
    Setting("lora_r", int, 8, "LoRA rank", label="r", title="lora r", low=1),
    Setting("lora_alpha", float, 16.0, "LoRA scale numerator (the update is scaled by alpha / r)",
            label="alpha", title="lora alpha", low=0, low_open=True, high=1e6, fmt="g"),
    Setting("lora_dropout", float, 0.0, "dropout on the adapter's input (above 0 it keeps a "
            "copy of every adapted layer's input: more memory)", label="dropout",
            title="lora dropout", low=0, high=1, high_open=True, fmt="g"),
    Setting("lora_targets", str, None, "comma-separated layer names to adapt (default: GPT-2 "
            "c_attn,c_proj,c_fc; other models every linear layer but the head)",
            label="targets", title="lora targets", optional=True),
    Setting("gradient_checkpointing", bool, False, "recompute activations in the backward "
            "pass: far less memory, about a third slower", label="grad ckpt"),
    Setting("compile", bool, False, "torch.compile the model for training (GPU; the first "
            "steps are slow while it compiles)", label="compile"),
    Setting("processes", int, 1, "processes to train on, one per GPU (more than 1: the run "
            "goes to torchrun)", label="processes", low=1, high=1024, cli=False),
    Setting("fsdp", bool, False, "shard weights, gradients and optimizer state over the "
            "processes (FSDP): a model too big for one device trains on several", label="FSDP"),
    Setting("sample_prompt", str, None, "prompt of the samples after each eval", optional=True),
    Setting("sample_tokens", int, 32, "tokens per sample", low=1, cli=False),
    Setting("max_steps", int, None, "stop after N optimizer steps", optional=True, low=1),
    Setting("patience", int, 0, "stop after N evaluations without a better eval loss (0: off)",
            label="patience", low=0),
    Setting("keep_best", bool, False, "save the model of the best evaluation, not the last",
            label="keep best"),
)

# Quick settings that show learning within a minute on the tiny demo; conventional
# fine-tuning values on a real model. Anything not named here takes the declared default.
TRAIN_PRESETS: dict[str, dict[str, Any]] = {
    "demo": {"epochs": 8.0, "lr": 3e-3, "block_size": 32},
    "default": {},
}
# A LoRA adapter starts at zero and has few weights: it wants a higher learning rate.
LORA_LR = {"demo": 1e-2, "default": 2e-4}
MAX_DEFAULT_BLOCK = 1024


def default_block_size(max_positions: int) -> int:
    """The block a run gets when nobody chose one: the model's whole context, up to 1024."""
    return min(max_positions, MAX_DEFAULT_BLOCK)


def lr_default(model_name: str, lora: bool = False) -> float:
    """The learning rate a run on this model starts from: full fine-tuning's, or LoRA's."""
    if lora:
        return LORA_LR.get(model_name, LORA_LR["default"])
    preset = TRAIN_PRESETS.get(model_name, TRAIN_PRESETS["default"])
    return preset.get("lr", by_name(TRAIN_SETTINGS)["lr"].default)


def block_default(model_name: str, max_positions: int, dialogues: bool = False) -> int:
    """The block a run on this model gets when nobody chose one. Dialogues are learned in
    context, so theirs holds whole conversations: the model's context (up to 1024), not a
    preset's short block for texts, which would keep one exchange of each."""
    preset = TRAIN_PRESETS.get(model_name, TRAIN_PRESETS["default"])
    block = None if dialogues else preset.get("block_size")
    return min(block or default_block_size(max_positions), max_positions)


def train_defaults(model_name: str, max_positions: int, lora: bool = False,
                   dialogues: bool = False) -> dict[str, Any]:
    """Every training setting's default for this model and kind of data, for the app and
    the CLI alike."""
    values = {s.name: s.default for s in TRAIN_SETTINGS}
    values.update(TRAIN_PRESETS.get(model_name, TRAIN_PRESETS["default"]))
    values["lora"] = lora
    values["lr"] = lr_default(model_name, lora)
    values["block_size"] = block_default(model_name, max_positions, dialogues)
    return values
