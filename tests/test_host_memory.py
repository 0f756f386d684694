"""A command restarts itself once with glibc's heap tuned (core.base.host_memory), never when the
user chose the tunables, and only where huge pages make it cheap."""

import os
import subprocess
import sys

from core.base.host_memory import TUNABLES, huge_pages_available, tuned_environment
from tests.helpers import ROOT

PRINT_TUNABLES = ("from core.base.host_memory import restart_tuned; restart_tuned(); "
                  "import os; print(os.environ.get('GLIBC_TUNABLES'))")


def test_huge_pages_are_read_from_the_kernels_setting(tmp_path):
    setting = tmp_path / "enabled"
    for text, available in [("always [madvise] never\n", True), ("[always] madvise never\n", True),
                            ("always madvise [never]\n", False)]:
        setting.write_text(text)
        assert huge_pages_available(setting) is available
    assert huge_pages_available(tmp_path / "missing") is False


def test_a_users_tunables_are_left_alone():
    assert tuned_environment({"GLIBC_TUNABLES": "glibc.malloc.arena_max=1"}) is None


def _run(env):
    proc = subprocess.run([sys.executable, "-c", PRINT_TUNABLES], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_the_process_restarts_itself_once_with_the_tuned_heap():
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    expected = TUNABLES if tuned_environment(env) is not None else "None"
    assert _run(env) == expected
    mine = {**env, "GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}
    assert _run(mine) == "glibc.malloc.arena_max=2"
