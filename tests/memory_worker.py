"""Run by test_memory.py in a process of its own, with the C heap as a command has it: the
memory plan of a short training run, then the run, then its peak
resident memory above what the process held with its libraries loaded, before the model.
Prints one JSON line."""

import json
import os
import sys

from core.base.host_memory import peak_resident_bytes, resident_bytes

os.environ["HF_HUB_OFFLINE"] = "1"

# The libraries a run uses (~200 MB of code and tables), loaded before the baseline.
import accelerate  # noqa: E402, F401
import datasets  # noqa: E402, F401
import peft  # noqa: E402, F401
import transformers.models.gpt2.modeling_gpt2  # noqa: E402, F401

from core.model.session import load_session  # noqa: E402
from core.training.config import TrainConfig  # noqa: E402
from core.training.loop import train  # noqa: E402
from core.training.memory import memory_plan  # noqa: E402


def main() -> None:
    model, train_file, mode, batch, block = sys.argv[1:6]
    checkpointing = len(sys.argv) > 6 and sys.argv[6] == "ckpt"
    baseline = resident_bytes()
    session = load_session(model, device="cpu")
    config = TrainConfig(train=train_file, batch_size=int(batch), block_size=int(block),
                         lora=mode == "lora", max_steps=2, eval_tokens=4096, sample_tokens=2,
                         gradient_checkpointing=checkpointing, lr=1e-4)
    plan = memory_plan(session, config)
    train(session, config)
    peak = peak_resident_bytes() - baseline
    print(json.dumps({"estimate": plan.total, "measured": peak, "step_peak": plan.step_peak,
                      "eval_peak": plan.eval_peak, "line": plan.line(),
                      "trainable": plan.trainable}))


if __name__ == "__main__":
    main()
