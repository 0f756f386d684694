"""Each run writes TensorBoard event files into `tb/` of its output folder; read back with
TensorBoard's own reader they hold the workspace's curves — across the checkpoint saves that
swap the folder into place while the run goes on."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from core.base.errors import UserError
from core.base.safe_write import check_output_folder
from core.store.database import Store

ROOT = Path(__file__).resolve().parents[1]
CORPUS = str(ROOT / "core/resources/corpus_ru.txt")


def read_logs(folder: Path) -> EventAccumulator:
    logs = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    logs.Reload()
    return logs


def scalars(logs: EventAccumulator, tag: str) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in logs.Scalars(tag)]


def test_the_event_files_hold_the_workspaces_curves(tmp_path):
    out = tmp_path / "run"
    # keep-best saves at each better evaluation: the folder is swapped several times mid-run
    train = subprocess.run([sys.executable, "-m", "tui.cli", "train", "--model", "demo", "--train",
                            CORPUS, "--max-steps", "12", "--eval-every", "3", "--keep-best",
                            "--out", str(out), "--jsonl"], capture_output=True, text=True, cwd=ROOT)
    assert train.returncode == 0, train.stderr
    saves = sum('"event": "saved"' in line for line in train.stdout.splitlines())
    assert saves >= 2
    store = Store.open()
    run = store.runs()[0]
    steps, evals = store.curves(run["id"])
    logs = read_logs(out / "tb")
    as_logged = [(step, float(np.float32(loss))) for step, loss in steps]   # TensorBoard keeps float32
    assert scalars(logs, "loss/train") == as_logged and len(as_logged) == 12
    assert scalars(logs, "loss/eval") == [(s, float(np.float32(v))) for s, v in evals]
    assert {"learning_rate", "tokens_per_s", "perplexity"} <= set(logs.Tags()["scalars"])
    samples = [json.loads(line)["text"] for line in train.stdout.splitlines() if '"sample"' in line]
    logged = [e.tensor_proto.string_val[0].decode() for e in logs.Tensors("sample/text_summary")]
    assert logged == samples
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]   # no leftover beside it


def test_a_folder_holding_only_a_runs_logs_is_free_for_a_model(tmp_path):
    folder = tmp_path / "ended-early"
    (folder / "tb").mkdir(parents=True)
    (folder / "tb" / "events.out.tfevents.1.host.1.0").write_bytes(b"")
    assert check_output_folder(folder) == folder.resolve()
    (folder / "tb" / "notes.txt").write_text("mine")    # a user's file among them: refused
    with pytest.raises(UserError, match="not a rugpt-tui checkpoint"):
        check_output_folder(folder)


def test_the_csv_export_holds_every_runs_curves(tmp_path):
    import csv
    import io

    for seed in ("1", "2"):
        train = subprocess.run([sys.executable, "-m", "tui.cli", "train", "--model", "demo", "--train",
                                CORPUS, "--max-steps", "4", "--eval-every", "2", "--seed", seed],
                               capture_output=True, text=True, cwd=ROOT)
        assert train.returncode == 0, train.stderr
    export = subprocess.run([sys.executable, "-m", "tui.cli", "runs", "--export", "csv"],
                            capture_output=True, text=True, cwd=ROOT)
    assert export.returncode == 0, export.stderr
    rows = list(csv.DictReader(io.StringIO(export.stdout)))
    store = Store.open()
    for run in store.runs():
        mine = [r for r in rows if int(r["run"]) == run["id"]]
        steps = {s["step"]: s for s in store.step_rows(run["id"])}
        evals = {step: loss for step, loss, _ in store.evals(run["id"])}
        assert [int(r["step"]) for r in mine] == sorted(set(steps) | set(evals))
        for r in mine:
            step = int(r["step"])
            assert (float(r["loss"]) if r["loss"] else None) == (steps[step]["loss"] if step in steps else None)
            assert (float(r["eval_loss"]) if r["eval_loss"] else None) == evals.get(step)
    assert {int(r["run"]) for r in rows} == {run["id"] for run in store.runs()}
