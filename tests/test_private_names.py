"""Every private name of a library the app relies on, each with where and why (a public API
would not do the job). A test per name fails, naming it, when the installed library no
longer has it — instead of the app failing at start or a fix silently switching off. The
README's layout section lists them."""

import inspect

import pytest


def _textual_app_instance_attribute(name):
    from textual.app import App

    return getattr(App(), name)


def _linux_driver_attribute(name):
    from textual.drivers.linux_driver import LinuxDriver

    # set in __init__ or start_application_mode: the source names it
    assert f"self.{name}" in inspect.getsource(LinuxDriver), f"LinuxDriver.{name}"
    return True


PRIVATE_NAMES = {
    # tui/process/textual_fixes.py: a burst of typed characters arrives as one Paste
    "textual._xterm_parser.XTermParser":
        lambda: __import__("textual._xterm_parser", fromlist=["XTermParser"]).XTermParser,
    "textual.drivers.linux_driver.XTermParser":
        lambda: __import__("textual.drivers.linux_driver", fromlist=["x"]).XTermParser,
    "textual.drivers.web_driver.XTermParser":
        lambda: __import__("textual.drivers.web_driver", fromlist=["x"]).XTermParser,
    # tui/process/guard.py: an error in a handler is one line, the widget goes on
    "textual.message_pump.MessagePump._dispatch_message":
        lambda: __import__("textual.message_pump", fromlist=["x"]).MessagePump._dispatch_message,
    # tui/shell/ending.py: what the guard cannot survive ends the app with one line
    "textual.app.App._handle_exception":
        lambda: __import__("textual.app", fromlist=["x"]).App._handle_exception,
    # tui/render/notify.py (OSC 9/777) and tui/shell/startup.py (the frame kept)
    "textual.app.App()._driver": lambda: _textual_app_instance_attribute("_driver") or True,
    # tui/process/terminal.py: a dead terminal's EIO, and the settings restored at the end
    "textual.drivers.linux_driver.LinuxDriver._file": lambda: _linux_driver_attribute("_file"),
    "textual.drivers.linux_driver.LinuxDriver.attrs_before":
        lambda: _linux_driver_attribute("attrs_before"),
    # tui/cli/web_server.py: stopping the server signals each tab's app process itself
    "textual_serve.app_service.AppService._process": lambda: "self._process = process" in
        inspect.getsource(__import__("textual_serve.app_service", fromlist=["x"]).AppService) or None,
    # core/training/run.py: a second run in one process starts from a clean Accelerate state
    "accelerate.state.AcceleratorState._reset_state":
        lambda: __import__("accelerate.state", fromlist=["x"]).AcceleratorState._reset_state,
    "accelerate.state.GradientState._reset_state":
        lambda: __import__("accelerate.state", fromlist=["x"]).GradientState._reset_state,
    # core/training/sharding.py: a model's transformer blocks, for FSDP and the memory plan
    "transformers.PreTrainedModel._no_split_modules":
        lambda: hasattr(__import__("transformers").PreTrainedModel, "_no_split_modules") or None,
    # core/inference/inside.py: which attention a model runs, to switch back after the eager
    # attention that gives the weights (set_attn_implementation has no public getter)
    "transformers.PretrainedConfig()._attn_implementation":
        lambda: hasattr(__import__("transformers").PretrainedConfig(), "_attn_implementation") or None,
    # tui/process/shutdown.py: the app's process runs its exit functions, then ends without
    # the interpreter's teardown of torch & co. (1–3 s, past ctrl+q's 2 s)
    "atexit._run_exitfuncs": lambda: __import__("atexit")._run_exitfuncs,
}


@pytest.mark.parametrize("name", sorted(PRIVATE_NAMES))
def test_the_installed_library_still_has(name):
    try:
        found = PRIVATE_NAMES[name]()
    except (AttributeError, ImportError, AssertionError) as error:
        pytest.fail(f"{name} is gone from the installed library ({error}): see where the app "
                    "uses it (the comment above its entry) and replace it")
    assert found is not None, f"{name} is gone from the installed library"


def test_the_readme_lists_every_private_name():
    from tests.helpers import ROOT

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [name for name in PRIVATE_NAMES if f"`{name}`" not in readme]
    assert missing == [], "README's layout section does not list these"
