"""Before/after: the same prompt and seed on the weights as loaded and on the current ones —
the notebook's last step, one key away."""

from __future__ import annotations

from dataclasses import dataclass, replace

from core.inference.generation import GenerationDone, generate_stream
from core.inference.sampling import SamplingSettings
from core.model.weights import base_weights, current_weights


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
    for weights in (base_weights, current_weights):
        with weights(session) as model:
            view = replace(session, model=model)
            *_, done = generate_stream(view, prompt, settings)
        assert isinstance(done, GenerationDone)
        texts.append(done.text)
    return BeforeAfter(prompt, settings.seed or 0, texts[0], texts[1])
