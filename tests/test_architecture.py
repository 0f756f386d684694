"""The folder tree shows the architecture, and it stays that way: packages in a one-way
order enforced by import-linter (each contract is shown to fail on a violation of it), small
modules and functions, and folders a reader can take in at a glance."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "tui")
MAX_MODULE_LINES = 380
# A module may grow to this where splitting it would scatter one idea; its docstring says so.
MAX_LONG_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80
MAX_MODULES_PER_FOLDER = 12


def sources():
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


def test_no_module_is_longer_than_the_limit():
    long = {}
    for path in sources():
        text = path.read_text(encoding="utf-8")
        lines, docstring = text.count("\n"), ast.get_docstring(ast.parse(text)) or ""
        limit = MAX_LONG_MODULE_LINES if "module is long because" in docstring else MAX_MODULE_LINES
        if lines > limit:
            long[str(path.relative_to(ROOT))] = lines
    assert not long, long


def test_every_subcommand_runs_a_function_named_in_one_table():
    """`tui.cli.parser.COMMANDS` names each subcommand's function (a search for the function
    finds its command); the parser refuses a subcommand missing from it."""
    import importlib

    from tui.cli.parser import COMMANDS, build_parser

    build_parser()   # refuses a subcommand without a function, and the other way round
    for name, target in COMMANDS.items():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function)), name
    assert build_parser().parse_args(["runs", "--json"]).run == COMMANDS["runs"]


def test_no_function_is_longer_than_the_limit():
    long = {}
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(ROOT)}:{node.name}"] = lines
    assert not long, long


def test_no_folder_holds_more_modules_than_a_reader_takes_in():
    folders = {p.parent for p in sources()}
    crowded = {str(f.relative_to(ROOT)): n for f in folders
               if (n := len(list(f.glob("*.py")))) > MAX_MODULES_PER_FOLDER}
    assert not crowded, crowded


def test_every_package_says_what_lives_in_it():
    silent = [str(p.relative_to(ROOT)) for p in sources()
              if p.name == "__init__.py" and ast.get_docstring(ast.parse(p.read_text())) is None]
    assert not silent, silent


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    linter = Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(linter), "--no-cache"], cwd=cwd, capture_output=True, text=True,
                          env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"}, timeout=120)


def test_the_import_contracts_hold():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-3000:]


# One import that breaks each contract: (module it is added to, the import, the contract).
VIOLATIONS = [
    ("core/tokens/view.py", "import textual", "core never imports the UI"),
    ("core/base/errors.py", "import core.store.database", "core in layers"),
    ("core/model/device.py", "import core.inference.sampling", "core in layers"),
    ("tui/widgets/fields.py", "import tui.shell.app", "tui in layers"),
    ("tui/process/heap.py", "import tui.widgets.messages", "tui in layers"),
    ("tui/cli/commands.py", "import textual.widgets", "the headless commands never import Textual"),
    ("tui/process/early_frame.py", "import textual.app", "the early first frame is drawn before Textual"),
    ("tui/panes/generate.py", "import tui.panes.chat.pane", "panes never import each other"),
    ("core/training/config.py", "import core.training.loop", "no import cycles"),
]


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    """A copy of the sources and the contracts, to break one import at a time."""
    where = tmp_path_factory.mktemp("checkout")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, where / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", where / "pyproject.toml")
    return where


@pytest.mark.parametrize("module, line, contract", VIOLATIONS, ids=[v[2] for v in VIOLATIONS])
def test_each_contract_fails_on_a_violation_of_it(checkout, module, line, contract):
    path = checkout / module
    original = path.read_text(encoding="utf-8")
    path.write_text(original + f"\n{line}  # a deliberate violation\n", encoding="utf-8")
    try:
        result = lint_imports(checkout)
    finally:
        path.write_text(original, encoding="utf-8")
    assert result.returncode != 0, result.stdout[-2000:]
    broken = [row for row in result.stdout.splitlines() if row.rstrip().endswith("BROKEN")]
    assert any(row.startswith(contract) for row in broken), result.stdout[-2000:]
