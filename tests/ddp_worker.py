"""Run under torchrun by test_training.py: train the demo model on this rank's shard, then
write this rank's weights so the test can compare ranks and a single-process run."""

import os
import sys

os.environ["HF_HUB_OFFLINE"] = "1"

import torch  # noqa: E402

from core.session import load_session  # noqa: E402
from core.train_config import TrainConfig  # noqa: E402
from core.training import train  # noqa: E402


def main() -> None:
    train_file, test_file, out_dir, batch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    session = load_session("demo", device="cpu")
    config = TrainConfig(train=train_file, test=test_file, epochs=1, lr=1e-3, batch_size=batch,
                         block_size=32, warmup=0.0, seed=3, sample_tokens=4)
    train(session, config)
    rank = int(os.environ.get("RANK", "0"))
    torch.save({k: v.detach().cpu() for k, v in session.model.state_dict().items()},
               os.path.join(out_dir, f"rank{rank}.pt"))


if __name__ == "__main__":
    main()
