"""A run's curves as TensorBoard event files, in `tb/` of its output folder: train and eval
loss, perplexity, learning rate, tokens per second, and the samples as text.

    tensorboard --logdir <the runs folder>

shows every run side by side. The folder is made at the first step or evaluation — a run
refused before its data was read leaves nothing — and the checkpoint saves that swap the
output folder into place carry `tb/` along (hard links: the open event file goes on growing
in the new folder)."""

from __future__ import annotations

from pathlib import Path

from core.base.safe_write import LOGS_DIR
from core.training import events as ev


class TensorBoardLog:
    """Called with each of a run's events; writes them as TensorBoard summaries."""

    FLUSH_SECONDS = 5   # `tensorboard` watching the folder sees a running run within seconds

    def __init__(self, out: str | Path) -> None:
        self.folder = Path(out).expanduser() / LOGS_DIR
        self.writer = None

    def _writer(self):
        if self.writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(self.folder), flush_secs=self.FLUSH_SECONDS)
        return self.writer

    def __call__(self, event: ev.TrainEvent) -> None:
        match event:
            case ev.Step():
                writer = self._writer()
                writer.add_scalar("loss/train", event.loss, event.step)
                writer.add_scalar("learning_rate", event.lr, event.step)
                writer.add_scalar("tokens_per_s", event.tokens_per_s, event.step)
            case ev.Eval():
                writer = self._writer()
                writer.add_scalar("loss/eval", event.eval_loss, event.step)
                writer.add_scalar("perplexity", event.perplexity, event.step)
            case ev.Sample():
                self._writer().add_text("sample", event.text, event.step)
            case ev.Done():
                self.close()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
