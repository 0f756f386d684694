"""The weights as loaded, kept for before/after, and a way back to them.

The base weights are copied to the CPU once, when first needed (before training changes
anything), so "before" always means the model as it was loaded.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from pathlib import Path

import torch

from core.base.errors import UserError


def remember_base(session) -> None:
    """Keep a CPU copy of the weights as loaded (call before the first training step)."""
    if getattr(session, "base_state", None) is None:
        with session.lock:
            session.base_state = {k: v.detach().to("cpu", copy=True)
                                  for k, v in session.model.state_dict().items()}


def reset_to_base(session) -> None:
    """Back to the model as loaded: an adapter from a folder goes back to its saved weights,
    one added since is taken off; other weights come back from the copy."""
    if session.adapter is not None:
        from core.model.lora import load_adapter_weights

        with session.lock:
            if session.info.base_model is not None:
                load_adapter_weights(session.adapter, session.info.model)
            else:
                session.adapter.unload()   # the LoRA layers give way to the layers they wrapped
                session.adapter = None
            session.weights_version += 1
        return
    remember_base(session)
    with session.lock, torch.no_grad():
        session.model.load_state_dict(session.base_state)
        session.weights_version += 1


def load_trained_weights(session, folder: str) -> None:
    """Put a checkpoint's weights into the session's model, keeping the weights as loaded as
    the base: before/after then compares the model before and after that run."""
    from safetensors.torch import load_file

    from core.model.lora import attach_adapter, is_adapter_folder, load_adapter_weights

    if is_adapter_folder(folder):   # a LoRA run's checkpoint: its adapter on the base
        if session.adapter is None:
            attach_adapter(session, folder)
        else:
            with session.lock:
                load_adapter_weights(session.adapter, folder)
                session.weights_version += 1
        return
    remember_base(session)
    state = {}
    for file in sorted(Path(folder).glob("*.safetensors")):
        state.update(load_file(str(file)))
    if not state:
        raise UserError(f"{folder}: no weights (*.safetensors) in this folder")
    with session.lock, torch.no_grad():
        missing, unexpected = session.model.load_state_dict(state, strict=False)
        session.weights_version += 1
    if unexpected or len(missing) > 2:   # tied output weights are not saved twice
        raise UserError(f"{folder}: these weights do not fit {session.info.model}")
    session.base_model = None   # a comparison model built before holds other weights


def base_model(session):
    """A second model holding the base weights, built once and kept for later comparisons."""
    remember_base(session)
    if getattr(session, "base_model", None) is None:
        with session.lock:
            model = copy.deepcopy(session.model)
            model.load_state_dict(session.base_state)
            model.eval()
        session.base_model = model
    return session.base_model


@contextmanager
def base_weights(session):
    """The model with its base weights while the block runs. With a LoRA adapter that is the
    same model with the adapter switched off — no copy of the weights; training waits."""
    if session.adapter is None:
        yield base_model(session)
        return
    with session.lock, session.adapter.disable_adapter():
        yield session.model


@contextmanager
def current_weights(session):
    yield session.model


def load_with_weights(name: str, trained: str | None = None, **options):
    """`load_session(name, **options)`, with a run's saved weights (`trained`) on top: the
    model as loaded stays the "before" of before/after."""
    from core.model.session import load_session

    session = load_session(name, **options)
    if trained is not None:
        load_trained_weights(session, trained)
    return session
