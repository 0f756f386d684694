"""The demo's learning figures with its default settings on its shipped corpus, as the Train
pane starts it (F8): seconds, steps, step-0 and final eval loss, the train/eval gap, and the
samples before and after.

    python -m bench.demo_learning
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    started = time.perf_counter()
    from core.model.demo import demo_model_dir

    demo_model_dir()
    built = time.perf_counter() - started

    from core.base.paths import corpus_path
    from core.base.settings import train_defaults
    from core.model.session import load_session
    from core.training.config import TrainConfig
    from core.training.events import Eval, Sample, Step
    from core.training.loop import train

    session = load_session("demo", device="cpu")
    settings = train_defaults("demo", session.max_positions)
    events = []
    started = time.perf_counter()
    result = train(session, TrainConfig(train=str(corpus_path()), **settings),
                   on_event=events.append)
    seconds = time.perf_counter() - started
    evals = [e.eval_loss for e in events if isinstance(e, Eval)]
    last_losses = [e.loss for e in events if isinstance(e, Step)][-10:]
    train_loss = sum(last_losses) / len(last_losses)
    samples = [e for e in events if isinstance(e, Sample)]
    print(f"demo build (or cache hit): {built:.1f} s")
    print(f"settings: epochs {settings['epochs']:g}, lr {settings['lr']:g}, "
          f"batch {settings['batch_size']}, block {settings['block_size']}")
    print(f"training: {seconds:.1f} s, {result.steps} steps")
    print(f"eval loss: step 0 {evals[0]:.3f} → final {evals[-1]:.3f} "
          f"({evals[-1] / evals[0]:.0%} of step 0)")
    print(f"final train loss (mean of the last 10 steps) {train_loss:.3f}; "
          f"eval − train {evals[-1] - train_loss:+.3f} nat")
    print(f"before: {samples[0].text}")
    print(f"after:  {samples[-1].text}")


if __name__ == "__main__":
    main()
