"""Patience and keep-best: a run stops after N evaluations without a better eval loss, and
with keep-best its folder holds the model of its best evaluation — the same bytes a run
stopped at that step saves."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors import safe_open

from core.base.errors import UserError
from core.model.session import load_session
from core.training import events as ev
from core.training.config import TrainConfig, check_paths
from core.training.loop import train

ROOT = Path(__file__).resolve().parents[1]
CORPUS = str(ROOT / "core/resources/corpus_ru.txt")
# a constant learning rate: a run cut short at step N trains exactly as a longer one did to N
STEADY = dict(schedule="constant", warmup=0.0, eval_every=3, seed=0, epochs=8.0, block_size=32)


def trained(config: TrainConfig) -> tuple[list, object]:
    events: list = []
    result = train(load_session("demo", device="cpu"), config, on_event=events.append)
    return events, result


def evals(events) -> list[tuple[int, float]]:
    return [(e.step, e.eval_loss) for e in events if isinstance(e, ev.Eval)]


def weights(folder: Path) -> dict[str, bytes]:
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        return {name: f.get_tensor(name).numpy().tobytes() for name in f.keys()}


def test_patience_stops_a_run_whose_eval_loss_rises(demo_dir, tmp_path):
    events, result = trained(TrainConfig(train=CORPUS, lr=0.5, patience=2, max_steps=60,
                                         out=str(tmp_path / "out"), **STEADY))
    seen = evals(events)
    best = min(range(len(seen)), key=lambda i: seen[i][1])
    assert result.stop_reason == "patience" and result.steps < 60
    assert len(seen) - 1 - best == 2                       # two evaluations, none better, then stop
    assert all(loss >= seen[best][1] for _, loss in seen[best + 1:])
    assert any("stopped early" in e.message for e in events if isinstance(e, ev.Notice))
    done = events[-1]
    assert isinstance(done, ev.Done) and done.stop_reason == "patience"
    assert done.kept_step == result.steps                  # without keep-best: the last step


def test_keep_best_saves_the_best_evaluations_weights(demo_dir, tmp_path):
    events, result = trained(TrainConfig(train=CORPUS, lr=0.02, patience=3, keep_best=True,
                                         max_steps=80, out=str(tmp_path / "best"), **STEADY))
    seen = evals(events)
    best_step = min(seen, key=lambda s: s[1])[0]
    assert 0 < best_step < result.steps                    # the premise: it got better, then worse
    assert result.stop_reason == "patience" and result.kept_step == best_step
    assert json.loads((tmp_path / "best" / "trainer_state.json").read_text())["step"] == best_step
    # the same run stopped at the best step, saved there: byte for byte the same weights
    _, at_best = trained(TrainConfig(train=CORPUS, lr=0.02, max_steps=best_step,
                                     out=str(tmp_path / "at-best"), **STEADY))
    assert at_best.steps == best_step
    assert weights(tmp_path / "best") == weights(tmp_path / "at-best")


def test_keep_best_needs_a_folder_and_says_which_step_it_kept(demo_dir, tmp_path):
    with pytest.raises(UserError, match="--keep-best: give --out"):
        check_paths(TrainConfig(train=CORPUS, keep_best=True))
    out = tmp_path / "kept"
    run = subprocess.run([sys.executable, "-m", "tui.cli", "train", "--model", "demo", "--train",
                          CORPUS, "--lr", "0.5", "--eval-every", "2", "--patience", "1",
                          "--keep-best", "--out", str(out), "--max-steps", "30"],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    said = " ".join(run.stderr.split())                   # as the terminal's width wrapped it
    assert "stop: patience" in said and f"saved to {out} (step 0, the best eval)" in said
