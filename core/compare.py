"""Base weights vs current weights: the notebook's before/after, and a way back.

The base weights are copied to the CPU once, when first needed (before training changes
anything), so "before" always means the model as it was loaded.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import torch

from core.generation import Done, generate_stream
from core.sampling import SamplingSettings


def remember_base(session) -> None:
    """Keep a CPU copy of the weights as loaded (call before the first training step)."""
    if getattr(session, "base_state", None) is None:
        with session.lock:
            session.base_state = {k: v.detach().to("cpu", copy=True)
                                  for k, v in session.model.state_dict().items()}


def reset_to_base(session) -> None:
    remember_base(session)
    with session.lock, torch.no_grad():
        session.model.load_state_dict(session.base_state)


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


@dataclass
class BeforeAfter:
    prompt: str
    seed: int
    before: str
    after: str


def before_after(session, prompt: str, settings: SamplingSettings | None = None) -> BeforeAfter:
    """The same prompt and seed on the base weights and on the current ones."""
    settings = settings or SamplingSettings(seed=0, max_new_tokens=48)
    if settings.seed is None:
        settings = replace(settings, seed=0)
    texts = []
    for model in (base_model(session), session.model):
        view = replace(session, model=model)
        *_, done = generate_stream(view, prompt, settings)
        assert isinstance(done, Done)
        texts.append(done.text)
    return BeforeAfter(prompt, settings.seed, texts[0], texts[1])
