"""Two machines, written down and tested: two `torchrun --nnodes 2` (one process each) on the
loopback, each with a workspace of its own as two machines would have, train like one
process with the whole batch — with plain data parallelism and with FSDP; only rank 0's
machine records the run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from tests.helpers import cli
from tests.serving import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("sharded", [False, True], ids=["ddp", "fsdp"])
def test_two_nodes_on_the_loopback_train_like_one_process(corpus_files, tmp_path, sharded):
    train_file, test_file = corpus_files
    settings = ["--train", str(train_file), "--test", str(test_file), "--epochs", "0.5",
                "--block-size", "32", "--lr", "3e-3", "--device", "cpu"]
    port, nodes = free_port(), []
    for rank in (0, 1):
        home = tmp_path / f"machine{rank}"
        env = dict(os.environ, RUGPT_TUI_HOME=str(home), OMP_NUM_THREADS="1")
        nodes.append(subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1",
             "--node_rank", str(rank), "--master_addr", "127.0.0.1", "--master_port", str(port),
             "-m", "tui.cli.main", "train", "--model", "demo", *settings, "--batch-size", "2",
             "--out", str(tmp_path / "two-nodes"), "--jsonl", *(["--fsdp"] if sharded else [])],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [node.communicate(timeout=300) for node in nodes]
    for node, (_, err) in zip(nodes, outputs):
        assert node.returncode == 0, err[-2000:]
    assert '"event": "done"' in outputs[0][0] and not outputs[1][0].strip()   # rank 0 speaks

    one = cli("train", "--model", "demo", *settings, "--batch-size", "4", "--out", str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr
    two, expected = (load_file(tmp_path / name / "model.safetensors") for name in ("two-nodes", "one"))
    assert two.keys() == expected.keys()
    for name, tensor in expected.items():
        torch.testing.assert_close(two[name], tensor, rtol=1e-4, atol=1e-4, msg=name)

    def runs(machine: str) -> list[dict]:
        done = cli("runs", "--json", env={"RUGPT_TUI_HOME": str(tmp_path / machine)})
        return json.loads(done.stdout) if done.stdout.strip() else []
    recorded = runs("machine0")
    assert [r["status"] for r in recorded] == ["done"] and runs("machine1") == []
