"""Checkpoints that are never half-written: everything goes to a temporary folder beside the
target, and only a complete folder is renamed into place. A crash or kill during the (long)
write leaves the previous checkpoint as it was."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

STATE_DIR = "training_state"
TRAINER_FILE = "trainer_state.json"


def save_checkpoint(out: str | os.PathLike, model, tokenizer, trainer_state: dict,
                    accelerator=None) -> Path:
    """Write model + tokenizer (+ optimizer, scheduler and RNG state through Accelerate) to
    `out`. Under several processes every rank writes its RNG state; rank 0 does the rest."""
    out = Path(out).resolve()
    main = accelerator is None or accelerator.is_main_process
    tmp = out.with_name(f".{out.name}.writing")  # a leftover from a killed save is replaced
    if main:
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
    try:
        if accelerator is not None:
            accelerator.wait_for_everyone()
            accelerator.save_state(str(tmp / STATE_DIR), safe_serialization=True)
            accelerator.wait_for_everyone()
            model = accelerator.unwrap_model(model)
        if main:
            model.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
            (tmp / TRAINER_FILE).write_text(json.dumps(trainer_state, indent=2))
            _swap_into_place(tmp, out)
    except BaseException:
        if main:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    if accelerator is not None:
        accelerator.wait_for_everyone()
    return out


def _swap_into_place(ready: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
    os.replace(ready, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def recover(out: str | os.PathLike) -> Path:
    """If a save was cut between its two renames, put the previous checkpoint back."""
    out = Path(out)
    old = out.with_name(f".{out.name}.old")
    if not out.exists() and old.exists():
        os.replace(old, out)
    return out


def read_trainer_state(folder: str | os.PathLike) -> dict:
    path = Path(folder) / TRAINER_FILE
    if not path.is_file():
        from core.errors import UserError

        raise UserError(f"{folder}: not a rugpt-tui checkpoint (no {TRAINER_FILE})")
    return json.loads(path.read_text())
