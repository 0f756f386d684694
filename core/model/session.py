"""The model session: one model + tokenizer on one device, and the facts the UI shows about it.

`load_session("demo" | "<hub id>" | "<folder>")` is the single way the app, the CLI and the tests
load a model; everything goes through `AutoModelForCausalLM` / `AutoTokenizer`.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from core.base.errors import UserError, first_line
from core.base.paths import kind_of, looks_like_hub_id
from core.base.quiet import quiet_transformers
from core.base.settings import DEFAULT_MODEL
from core.model.demo import demo_model_dir
from core.model.device import (
    Placement,
    choose_placement,
    cpu_computes_bfloat16,
    cpu_inference_dtype,
)

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

HUB_PROBE_TIMEOUT_S = 3.0


@dataclass
class ModelInfo:
    model: str
    model_class: str
    tokenizer_class: str
    parameters: int
    device: str
    dtype: str
    vocab_size: int
    max_positions: int
    tokenizer_vocab: int = 0
    source: str = ""
    pad_token: str | None = None
    pad_fix: str = "own"  # own | vocab | eos | added
    base_model: str | None = None   # a LoRA adapter's base (the model is base + adapter)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class ModelSession:
    """A loaded model. `lock` serialises every use of the weights (generation vs training)."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    placement: Placement
    info: ModelInfo
    notice: str | None = None  # e.g. "fell back to demo", shown on screen
    lock: threading.RLock = field(default_factory=threading.RLock)
    base_state: dict | None = field(default=None, repr=False)  # weights as loaded (core.model.weights)
    base_model: PreTrainedModel | None = field(default=None, repr=False)
    weights_version: int = 0   # bumped whenever the weights change (a KV cache is then stale)
    adapter: object | None = field(default=None, repr=False)   # the PeftModel (core.model.lora)
    static_decode: tuple | None = field(default=None, repr=False)   # core.inference.generation.static_decoding
    # heads kept out of every forward pass: block → heads, 0-based (core.inference.inside)
    knocked_out: dict[int, tuple[int, ...]] = field(default_factory=dict)
    knockout_hooks: list = field(default_factory=list, repr=False)

    @property
    def max_positions(self) -> int:
        return self.info.max_positions


def hub_reachable(timeout: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """A TCP connect to the hub endpoint, bounded by `timeout` (from_pretrained retries for ~50 s)."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return False
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _cached_on_disk(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "config.json")
    return isinstance(found, str)


def resolve_source(name: str, *, allow_demo_fallback: bool = True,
                   on_notice=None) -> tuple[str, bool, str | None]:
    """Decide where `name` loads from: (path or id, local_files_only, notice). `on_notice`
    hears a fallback the moment it is decided, before the (slower) demo build and load."""
    if name == "demo":
        return str(demo_model_dir()), True, None
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UserError(f"{path}: no config.json — not a model folder saved with save_pretrained")
        return str(path), True, None
    if path.exists():
        raise UserError(f"{path}: {kind_of(path.stat().st_mode)}, not a model folder; --model "
                        "takes a hub id, a model folder or 'demo'")
    if not looks_like_hub_id(name):   # meant as a folder
        raise UserError(f"{name}: no such model folder")

    if _cached_on_disk(name):
        return name, True, None
    if hub_reachable():
        return name, False, None
    if name == DEFAULT_MODEL and allow_demo_fallback:
        notice = (f"{name} is not cached and the Hugging Face hub cannot be reached: "
                  "running on the demo model")
        if on_notice is not None:
            on_notice(notice)
        return str(demo_model_dir()), True, notice
    raise UserError(f"model {name!r} is not in the local cache and the Hugging Face hub cannot be reached")


def ensure_pad_token(tokenizer, model=None) -> str:
    """Give the tokenizer a pad token without turning the real EOS into padding.

    Padding positions are always found through the attention mask, never by comparing ids
    with `pad_token_id`, so reusing EOS as the pad id cannot hide a real EOS from the loss.
    """
    if tokenizer.pad_token_id is not None:
        return "own"
    vocab = tokenizer.get_vocab()
    for candidate in ("<pad>", "[PAD]", "<|pad|>"):
        if candidate in vocab:
            tokenizer.pad_token = candidate
            return "vocab"
    if tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
        return "eos"
    tokenizer.add_special_tokens({"pad_token": "<pad>"})
    if model is not None:
        model.resize_token_embeddings(len(tokenizer))
    return "added"


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())  # tied weights are counted once


def max_positions_of(model, tokenizer) -> int:
    config = model.config
    for attr in ("n_positions", "max_position_embeddings", "n_ctx", "seq_length"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", 0)
    return limit if 0 < limit < 1_000_000 else 2048


def load_session(name: str = DEFAULT_MODEL, *, device: str = "auto", dtype: str = "auto",
                 trust_remote_code: bool = False, allow_demo_fallback: bool = True,
                 on_notice=None, for_training: bool = False) -> ModelSession:
    """`for_training`: `--dtype auto` keeps float32 on the CPU (see core.model.device)."""
    quiet_transformers()
    adapter_folder, base_name = _adapter_of(name)
    if adapter_folder is not None:
        try:
            source, local_only, notice = resolve_source(base_name, allow_demo_fallback=False)
        except UserError as exc:
            raise UserError(f"{adapter_folder}: its base model {base_name!r} cannot be loaded: "
                            f"{exc}") from None
    else:
        source, local_only, notice = resolve_source(name, allow_demo_fallback=allow_demo_fallback,
                                                    on_notice=on_notice)
    placement = choose_placement(device, dtype)
    # An adapter checkpoint carries the tokenizer it was trained with (a chat template, say).
    tokenizer_source = (str(adapter_folder) if adapter_folder is not None
                        and (adapter_folder / "tokenizer_config.json").is_file() else source)

    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(
            tokenizer_source, local_files_only=local_only or tokenizer_source != source,
            trust_remote_code=trust_remote_code)
        # use_kernels=False: with the `kernels` package present (transformers requires it),
        # transformers re-kernelizes a GPU model on every train()/eval() switch and fetches
        # hub kernels for inference; on an offline box that raises at a run's first evaluation.
        model = AutoModelForCausalLM.from_pretrained(
            source, local_files_only=local_only, trust_remote_code=trust_remote_code,
            dtype=placement.torch_dtype, use_kernels=False)
    except UserError:
        raise
    except Exception as exc:  # the library's messages are long: keep the first line
        raise UserError(f"cannot load model {name!r}: {first_line(exc)}") from exc

    model.to(placement.device)
    model.eval()
    if dtype == "auto" and placement.device == "cpu" and not for_training:
        weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
        if cpu_inference_dtype(weight_bytes, cpu_computes_bfloat16()) == "bfloat16":
            import torch

            model.to(torch.bfloat16)
            placement = Placement("cpu", "bfloat16", inference_only=True)
    pad_fix = ensure_pad_token(tokenizer, model)
    if getattr(model.generation_config, "pad_token_id", None) is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id

    session = ModelSession(model=model, tokenizer=tokenizer, placement=placement, info=None,
                           notice=notice)
    if adapter_folder is not None:
        from core.model.lora import attach_adapter

        attach_adapter(session, adapter_folder)
    shown_name = "demo" if notice or name == "demo" else name
    info = ModelInfo(
        model=shown_name,
        model_class=type(model).__name__,
        tokenizer_class=type(tokenizer).__name__,
        parameters=count_parameters(model),
        device=str(model.device),
        dtype=str(next(model.parameters()).dtype).removeprefix("torch."),
        vocab_size=int(model.config.vocab_size),
        max_positions=max_positions_of(model, tokenizer),
        tokenizer_vocab=len(tokenizer),
        source=source,
        pad_token=tokenizer.pad_token,
        pad_fix=pad_fix,
        base_model=base_name,
    )
    session.info = info
    return session


def _adapter_of(name: str) -> tuple[Path | None, str | None]:
    """A LoRA adapter folder and the base it names, or (None, None) for any other model."""
    path = Path(name).expanduser()
    if name == "demo" or not path.is_dir():
        return None, None
    from core.model.lora import is_adapter_folder, read_adapter_config

    if not is_adapter_folder(path):
        return None, None
    base = read_adapter_config(path).get("base_model_name_or_path")
    if not base:
        raise UserError(f"{path}: the adapter does not name its base model")
    return path, base
