"""No command replaces its own process: the help, the headless commands and training start and
run in the process they were started in (core.base.host_memory says why the C heap is left as
it is). Checked with Python's audit hook for `os.exec*`, which a restart would go through."""

import subprocess
import sys

import pytest

from tests.helpers import ROOT

WATCHED = ("import sys; sys.addaudithook(lambda event, args: event == 'os.exec' and "
           "print('REPLACED', flush=True)); from tui.cli.main import main; sys.exit(main())")


@pytest.mark.parametrize("args", [["--help"], ["runs", "--json"], ["info", "--model", "demo"],
                                  ["train", "--model", "demo", "--train", "core/resources/corpus_ru.txt",
                                   "--max-steps", "1", "--no-record"]],
                         ids=["help", "runs", "info", "train"])
def test_a_command_is_never_replaced_by_a_restart(args, demo_dir):
    done = subprocess.run([sys.executable, "-c", WATCHED, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "REPLACED" not in done.stdout


def test_the_audit_hook_sees_a_restart():
    """The check above can fail: a process that does replace itself is seen."""
    restarting = ("import os, sys; sys.addaudithook(lambda event, args: event == 'os.exec' and "
                  "print('REPLACED', flush=True)); os.execv('/bin/true', ['true'])")
    done = subprocess.run([sys.executable, "-c", restarting], capture_output=True, text=True, timeout=60)
    assert "REPLACED" in done.stdout
