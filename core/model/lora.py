"""LoRA adapters through peft: which layers get one, putting one on the session's model,
saving and loading the adapter alone, and merging it into plain weights.

peft injects its layers into the model object itself, so `session.model` stays the model
every pane already uses (generation, chat, the KV cache); `session.adapter` is the
`PeftModel` around it, kept for what only it can do — save the adapter, switch it off for
"before", merge it.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

from core.base.errors import UserError, first_line

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
# GPT-2's attention (c_attn, c_proj) and MLP (c_fc, c_proj) are Conv1D layers: weight (in, out).
GPT2_TARGETS = ("c_attn", "c_proj", "c_fc")


@dataclass(frozen=True)
class LoraSpec:
    r: int
    alpha: float
    dropout: float
    targets: tuple[str, ...] | None = None   # None: per architecture (`default_targets`)

    @classmethod
    def of(cls, config) -> LoraSpec:
        """The adapter a TrainConfig asks for."""
        names = tuple(n.strip() for n in (config.lora_targets or "").split(",") if n.strip())
        return cls(config.lora_r, config.lora_alpha, config.lora_dropout, names or None)


def is_adapter_folder(path: str | Path) -> bool:
    return (Path(path).expanduser() / ADAPTER_CONFIG).is_file()


def read_adapter_config(folder: str | Path) -> dict:
    file = Path(folder).expanduser() / ADAPTER_CONFIG
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"{file}: unreadable adapter config: {first_line(exc)}") from None
    if not isinstance(config, dict) or config.get("peft_type", "LORA") != "LORA":
        raise UserError(f"{file}: not a LoRA adapter")
    if not (Path(folder).expanduser() / ADAPTER_WEIGHTS).is_file():
        raise UserError(f"{folder}: {ADAPTER_WEIGHTS} is missing")
    return config


def _adaptable(module) -> tuple[int, int] | None:
    """(in, out) features of a layer LoRA can adapt: Linear, or GPT-2's Conv1D."""
    import torch

    module = getattr(module, "base_layer", module)   # a layer that already carries an adapter
    if isinstance(module, torch.nn.Linear):
        return module.in_features, module.out_features
    if type(module).__name__ == "Conv1D" and getattr(module, "weight", None) is not None:
        fan_in, fan_out = module.weight.shape   # Conv1D keeps its weight as (in, out)
        return int(fan_in), int(fan_out)
    return None


def _modules(model):
    """The model's own modules, not the parts of adapters already on it."""
    for name, module in model.named_modules():
        parts = name.split(".")
        if "base_layer" not in parts and not any(p.startswith("lora_") for p in parts):
            yield name, module


def default_targets(model) -> tuple[str, ...]:
    """GPT-2's Conv1D layers where the model has them; otherwise every linear layer but the
    output head (what peft calls all-linear)."""
    names = {name.rsplit(".", 1)[-1] for name, module in _modules(model)
             if _adaptable(module) is not None}
    if any(type(m).__name__ == "Conv1D" for m in model.modules()):
        return tuple(t for t in GPT2_TARGETS if t in names)
    head = model.get_output_embeddings()
    heads = {name.rsplit(".", 1)[-1] for name, m in model.named_modules() if m is head}
    return tuple(sorted(names - heads))


def target_layers(model, spec: LoraSpec) -> dict[str, tuple[int, int]]:
    """Every layer the adapter goes on, with its (in, out) features; a target name that
    matches no adaptable layer is a one-line error."""
    targets = spec.targets or default_targets(model)
    found: dict[str, tuple[int, int]] = {}
    for target in targets:
        matched = False
        for name, module in model.named_modules():
            if name == target or name.endswith("." + target):
                shape = _adaptable(module)
                if shape is None:
                    raise UserError(f"lora targets: {target!r} is a {type(module).__name__}, not a "
                                    "linear layer LoRA can adapt")
                found[name], matched = shape, True
        if not matched:
            raise UserError(f"lora targets: {target!r} matches no layer of this model (layers: "
                            f"{', '.join(default_targets(model)) or 'none'})")
    if not found:
        raise UserError("lora targets: this model has no layer LoRA can adapt")
    # An update of an (in × out) layer has rank min(in, out) at most: a bigger r only adds
    # parameters (and memory) that can learn nothing more.
    rank = min(min(shape) for shape in found.values())
    if spec.r > rank:
        raise UserError(f"lora r {spec.r}: above the rank the adapted layers can take "
                        f"({rank} here): at most {rank}")
    return found


def count_trainable(model, spec: LoraSpec) -> int:
    """The adapter's parameters — r × (in + out) per layer — known before it exists."""
    return sum(spec.r * (fan_in + fan_out) for fan_in, fan_out in target_layers(model, spec).values())


def base_reference(session) -> str:
    """How an adapter names its base: `demo`, a hub id, or the absolute model folder."""
    if session.info.model == "demo":
        return "demo"
    source = Path(session.info.source)
    return str(source.resolve()) if source.is_dir() else session.info.source


def add_adapter(session, spec: LoraSpec):
    """A fresh adapter (B = 0: the model's outputs do not change) on the session's model; the
    base weights are frozen, only the adapter trains."""
    from peft import LoraConfig, get_peft_model

    model = session.model
    layers = target_layers(model, spec)
    conv1d = {name for name in layers
              if type(model.get_submodule(name)).__name__ == "Conv1D"}
    config = LoraConfig(task_type="CAUSAL_LM", r=spec.r, lora_alpha=spec.alpha,
                        lora_dropout=spec.dropout, fan_in_fan_out=bool(conv1d),
                        target_modules=sorted({n.rsplit(".", 1)[-1] for n in layers}))
    with session.lock, warnings.catch_warnings():
        warnings.simplefilter("ignore")   # peft's notes on Conv1D and names: handled here
        session.adapter = get_peft_model(model, config)
        session.weights_version += 1
    # The model's own path may be a cache folder; the adapter names its base as the user did.
    session.adapter.peft_config["default"].base_model_name_or_path = base_reference(session)
    return session.adapter


def adapter_spec(session) -> LoraSpec | None:
    if session.adapter is None:
        return None
    config = session.adapter.peft_config["default"]
    return LoraSpec(int(config.r), float(config.lora_alpha), float(config.lora_dropout),
                    tuple(sorted(config.target_modules)))


def adapter_settings(session) -> dict:
    """The training settings a loaded adapter fixes (empty when there is none)."""
    spec = adapter_spec(session)
    if spec is None:
        return {}
    return {"lora": True, "lora_r": spec.r, "lora_alpha": spec.alpha,
            "lora_dropout": spec.dropout, "lora_targets": ",".join(spec.targets)}


def make_trainable(session) -> list:
    """The adapter's parameters, set to train (an adapter loaded from a folder is frozen)."""
    params = []
    for name, param in session.model.named_parameters():
        param.requires_grad_("lora_" in name)
        if "lora_" in name:
            params.append(param)
    return params


def attach_adapter(session, folder: str | Path) -> None:
    """Put the adapter saved in `folder` on the session's model."""
    from peft import PeftModel

    read_adapter_config(folder)
    with session.lock, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            session.adapter = PeftModel.from_pretrained(session.model, str(folder))
        except Exception as exc:
            raise UserError(f"{folder}: this adapter does not fit the model: {first_line(exc)}") from None
        session.weights_version += 1


def write_adapter(adapter, folder: Path, full_weights: dict | None = None) -> None:
    """A PeftModel's adapter — config and weights, never the base's — into `folder`; taken
    from `full_weights` (the whole model's, gathered from its shards) when given."""
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file

    state = get_peft_model_state_dict(adapter, state_dict=full_weights, save_embedding_layers=False)
    state = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    save_file(state, str(folder / ADAPTER_WEIGHTS), metadata={"format": "pt"})
    adapter.peft_config["default"].save_pretrained(str(folder))


def load_adapter_weights(adapter, folder: str | Path) -> None:
    """The adapter weights saved in `folder` into a PeftModel of the same shape (resume)."""
    from peft.utils import set_peft_model_state_dict
    from safetensors.torch import load_file

    result = set_peft_model_state_dict(adapter, load_file(str(Path(folder) / ADAPTER_WEIGHTS)))
    if [k for k in result.missing_keys if "lora_" in k] or result.unexpected_keys:
        raise UserError(f"--resume {folder}: the saved adapter does not match this run's "
                        "(other targets or rank)")


def merged_model(session):
    """The adapter merged into the base weights: a plain model (the session's is consumed)."""
    with session.lock:
        model = session.adapter.merge_and_unload()
        session.adapter = None
        session.weights_version += 1
    return model


def export_merged(session, out: str | Path) -> Path:
    """Merge the session's adapter into its base weights and write a plain model (safetensors
    and the tokenizer) that loads anywhere, under the rule every model write follows."""
    from core.base.safe_write import FolderLock, check_output_folder, writing_folder

    if session.adapter is None:
        raise UserError(f"--model {session.info.model}: not a LoRA adapter folder (no {ADAPTER_CONFIG})")
    target = check_output_folder(out)
    with FolderLock(target):
        model = merged_model(session)
        state = {"step": 0, "note": f"merged from {session.info.model}",
                 "base_model": session.info.base_model}
        with writing_folder(target, state) as tmp:
            model.save_pretrained(tmp, safe_serialization=True)
            session.tokenizer.save_pretrained(tmp)
    return target
