"""Checkpoints that are never half-written and never cost a user a file.

Everything goes to a temporary folder beside the target, and only a complete folder is renamed
into place (`core.base.safe_write`). A crash, a kill, a full disk or a size limit during the (long)
write leaves the previous checkpoint as it was.
"""

from __future__ import annotations

import json
import os
import struct
import zipfile
from contextlib import nullcontext
from pathlib import Path

from core.base.errors import SaveError, UserError
from core.base.safe_write import (
    MARKER_FILE,
    FolderLock,
    check_output_folder,
    read_marker,
    recover,
    temp_beside,
    writing_folder,
)

STATE_DIR = "training_state"
SHARDS_DIR = "shards"   # in STATE_DIR: a sharded (FSDP) run's weights and moments, a file per rank
TRAINER_FILE = MARKER_FILE


def save_checkpoint(out: str | os.PathLike, model, tokenizer, trainer_state: dict,
                    accelerator=None, adapter=None, full_weights: dict | None = None,
                    write_shards=None) -> Path:
    """Write model + tokenizer (+ optimizer, scheduler and RNG state through Accelerate) to
    `out`; with a LoRA `adapter` (a PeftModel) the adapter's weights instead of the model's.
    Under several processes every rank writes its RNG state; rank 0 does the rest. A sharded
    model (FSDP) gives its `full_weights` as gathered on rank 0, and `write_shards(folder)`,
    which every rank calls to write its part of the training state.
    Raises SaveError (one line) when the write fails; the previous checkpoint is kept."""
    main = accelerator is None or accelerator.is_main_process
    out = check_output_folder(out) if main else Path(out).resolve()
    # Every rank writes into the same temporary folder; the main one owns it.
    with writing_folder(out, trainer_state) if main else nullcontext(temp_beside(out)) as tmp:
        if accelerator is not None:
            accelerator.wait_for_everyone()
            accelerator.save_state(str(tmp / STATE_DIR), safe_serialization=True)
            if write_shards is not None:
                write_shards(tmp / STATE_DIR)
            accelerator.wait_for_everyone()
            model = accelerator.unwrap_model(model)
        if main and adapter is not None:
            from core.model.lora import write_adapter

            write_adapter(adapter, tmp, full_weights)
            tokenizer.save_pretrained(tmp)
        elif main:
            model.save_pretrained(tmp, safe_serialization=True, state_dict=full_weights)
            tokenizer.save_pretrained(tmp)
    if accelerator is not None:
        accelerator.wait_for_everyone()
    return out


def save_locked(out: str | os.PathLike, model, tokenizer, trainer_state: dict,
                adapter=None) -> Path:
    """A one-off save (the app's `Save checkpoint`): the folder rule, the lock, the write."""
    target = check_output_folder(out)
    with FolderLock(target):
        return save_checkpoint(target, model, tokenizer, trainer_state, adapter=adapter)


def read_trainer_state(folder: str | os.PathLike) -> dict:
    state = read_marker(Path(folder))
    if state is None:
        raise UserError(f"{folder}: not a rugpt-tui checkpoint (no readable {TRAINER_FILE})")
    return state


def check_resumable(folder: str | os.PathLike) -> dict:
    """Everything `--resume` will read, checked before anything is loaded or written."""
    path = Path(folder)
    recover(path)
    if not path.is_dir():
        raise UserError(f"--resume {folder}: no such folder")
    state = read_trainer_state(path)
    if "scheduler" not in state:
        raise UserError(f"--resume {folder}: saved from the app, not during a run: nothing to "
                        "resume (load it with --model instead)")
    state_dir = path / STATE_DIR
    if not state_dir.is_dir():
        raise UserError(f"--resume {folder}: {STATE_DIR}/ is missing: the run cannot be resumed "
                        "(the weights still load with --model)")
    sharded = state.get("config", {}).get("fsdp")   # each rank's shards of weights and moments
    if sharded and not (state_dir / SHARDS_DIR).is_dir():
        raise UserError(f"--resume {folder}: {STATE_DIR}/{SHARDS_DIR}/ is missing: the sharded "
                        "run cannot be resumed (the weights still load with --model)")
    if state.get("config", {}).get("lora"):   # the weights are the adapter's, beside the state
        from core.model.lora import read_adapter_config

        read_adapter_config(path)
    elif not sharded and not any(state_dir.glob("model*.safetensors")) and not any(
            state_dir.glob("pytorch_model*")):
        raise UserError(f"--resume {folder}: {STATE_DIR}/ holds no model weights")
    for file in sorted(path.glob("*.safetensors")) + sorted(state_dir.glob("*.safetensors")):
        _check_safetensors(file)
    for file in sorted(state_dir.glob("*.bin")) + sorted(state_dir.glob("*.pkl")):
        _check_torch_archive(file)
    return state


def _check_safetensors(file: Path) -> None:
    """A safetensors file is whole when its size is exactly header + the data it declares."""
    size = file.stat().st_size
    try:
        with file.open("rb") as f:
            (header_len,) = struct.unpack("<Q", f.read(8))
            if header_len > size:
                raise ValueError
            header = json.loads(f.read(header_len))
        end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"),
                  default=0)
    except (struct.error, ValueError, KeyError, TypeError, IndexError):
        raise UserError(f"--resume: {file}: damaged (unreadable header)") from None
    if size != 8 + header_len + end:
        raise UserError(f"--resume: {file}: truncated or damaged ({size:,} bytes, "
                        f"expected {8 + header_len + end:,})")


def _check_torch_archive(file: Path) -> None:
    """torch.save writes a zip archive; a truncated one fails its directory or CRC check."""
    try:
        with zipfile.ZipFile(file) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError):
        bad = file.name
    if bad is not None:
        raise UserError(f"--resume: {file}: truncated or damaged")


__all__ = ["STATE_DIR", "TRAINER_FILE", "SaveError", "check_resumable", "read_trainer_state",
           "recover", "save_checkpoint", "save_locked"]
