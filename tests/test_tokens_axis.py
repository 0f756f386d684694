"""The loss chart against tokens seen: each step says how many tokens the run has trained
(a resumed run goes on counting), the workspace keeps it, and the chart's x axis switches
between steps and tokens, so runs of other batch or block sizes compare honestly."""

import json

from core.base.paths import corpus_path
from core.store.database import Store
from tests.helpers import cli, wait_for
from tui.panes.train.run import Curve, LossChart
from tui.shell.app import RuGPTApp

BATCH, BLOCK = 4, 16   # packed rows are whole blocks: each step trains BATCH × BLOCK tokens


def steps_of(result) -> list[dict]:
    assert result.returncode == 0, result.stderr
    return [e for e in map(json.loads, result.stdout.splitlines()) if e["event"] == "step"]


def test_steps_count_tokens_and_a_resume_goes_on_counting(demo_dir, tmp_path):
    out = tmp_path / "run"
    args = ("train", "--model", "demo", "--train", str(corpus_path()), "--batch-size", str(BATCH),
            "--block-size", str(BLOCK), "--jsonl")
    first = steps_of(cli(*args, "--max-steps", "2", "--out", str(out)))
    assert [e["tokens"] for e in first] == [BATCH * BLOCK, 2 * BATCH * BLOCK]
    resumed = steps_of(cli(*args, "--max-steps", "4", "--resume", str(out), "--out", str(out)))
    assert [(e["step"], e["tokens"]) for e in resumed] == [(3, 3 * BATCH * BLOCK), (4, 4 * BATCH * BLOCK)]
    run_id = Store.open().runs()[0]["id"]
    assert Store.open().step_tokens(run_id) == {3: 3 * BATCH * BLOCK, 4: 4 * BATCH * BLOCK}


def test_a_curve_on_tokens_keeps_only_steps_with_a_count():
    curve = Curve("#1", [(1, 3.0), (2, 2.0), (3, 1.5)], [(0, 4.0), (2, 2.1)], {1: 64, 2: 128})
    assert curve.on_tokens(curve.steps) == [(64, 3.0), (128, 2.0)]   # step 3: recorded without
    assert curve.on_tokens(curve.evals) == [(0, 4.0), (128, 2.1)]    # step 0: nothing trained yet


async def test_the_palette_switches_the_chart_to_tokens_seen(demo_dir, tmp_path):
    done = cli("train", "--model", "demo", "--train", str(corpus_path()), "--max-steps", "3")
    assert done.returncode == 0, done.stderr
    app = RuGPTApp(model="demo", device="cpu")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.session is not None, timeout=60)
        await pilot.press("f4")
        await wait_for(pilot, lambda: app.train_pane.runs_list.option_count == 1)
        chart = app.query_one(LossChart)
        await pilot.press("ctrl+p", *"Toggle x axis", "enter")
        await wait_for(pilot, lambda: "x: tokens seen" in str(chart.border_title))
        assert app.train_pane.by_tokens
        await pilot.press("ctrl+p", *"Toggle x axis", "enter")
        await wait_for(pilot, lambda: "tokens" not in str(chart.border_title))
