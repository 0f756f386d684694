"""The lesson (F12, `--lesson`): every step walked on the demo model by keyboard, each
exercise answered wrong and right — the answers computed here from the model's own
tokenizer, config, logits and data, never written in — on the tiny Llama for the tokenizer
steps; progress kept in the workspace; snapshots of two steps at 80×24 and 120×40."""

from __future__ import annotations

import pytest
from textual.widgets import Input

from core.base.paths import corpus_path
from core.inference.inside import logit_lens, prompt_ids
from core.lesson import facts
from core.lesson.checks import TARGET_SHARE
from core.lesson.steps import LESSON
from core.store.workspace import load_settings
from tests.helpers import wait_for
from tui.panes.lesson.panel import LessonPanel
from tui.shell.app import RuGPTApp

STEP = {step.key: step for step in LESSON}


def corpus_words() -> list[str]:
    text = corpus_path().read_text(encoding="utf-8")
    return sorted({w.lower() for w in facts.WORD.findall(text) if facts.is_word(w.lower())})


def one_token_word(tokenizer) -> str:
    return next(w for w in corpus_words() if len(facts.word_tokens(tokenizer, w)) == 1)


def many_token_word(tokenizer) -> str:
    goal = facts.split_goal(tokenizer)
    candidates = ["клаустрофобия", "достопримечательность", "электроэнцефалограмма"] + corpus_words()
    return next(w for w in candidates if len(facts.word_tokens(tokenizer, w)) >= goal)


async def ready(pilot) -> LessonPanel:
    app = pilot.app
    await wait_for(pilot, lambda: app.session is not None and app.panes_ready())
    panel = app.query_one(LessonPanel)
    if not app.lesson_at_start:
        await pilot.press("f12")
    await wait_for(pilot, lambda: panel.display and app.focused is panel.query_one("#lesson-answer"))
    return panel


async def answer(pilot, panel: LessonPanel, text: str) -> bool:
    """Type `text` in the lesson's field, Enter, and the verdict's ok."""
    field = panel.query_one("#lesson-answer", Input)
    field.focus()
    field.value = ""
    if text:
        await pilot.press(*text)
    key = panel.step.key
    panel.verdicts.pop(key, None)
    await pilot.press("enter")
    await wait_for(pilot, lambda: key in panel.verdicts, timeout=120)
    return panel.verdicts[key].ok


def verdict_line(panel: LessonPanel) -> str:
    return str(panel.query_one("#lesson-verdict").render())


async def test_the_whole_lesson_on_the_demo_by_keyboard(fresh_session, workspace_home):
    session, tokenizer = fresh_session, fresh_session.tokenizer   # the run trains it
    app = RuGPTApp(session=session, lesson=True)
    async with app.run_test(size=(120, 40)) as pilot:
        panel = await ready(pilot)
        # 1. a single token: the tokenizer decides
        assert panel.step.key == "tokens"
        await wait_for(pilot, lambda: app.active_tab() == "tokenize" and
                       app.tokenize_pane.query_one("#tok-input").text == STEP["tokens"].example)
        many, one = many_token_word(tokenizer), one_token_word(tokenizer)
        assert not await answer(pilot, panel, many)
        assert "|" in verdict_line(panel) and STEP["tokens"].hint["ru"][:20] in verdict_line(panel)
        assert not await answer(pilot, panel, "123")
        assert "нужны только буквы" in verdict_line(panel)
        assert not await answer(pilot, panel, "ы")   # a letter, not a word: said so
        assert "одна буква — это слово, только если" in verdict_line(panel)
        # «в» is a real word, one token as the Tokenize pane beside it says
        assert len(facts.word_tokens(tokenizer, "в")) == 1
        assert await answer(pilot, panel, "в")
        assert await answer(pilot, panel, one)

        # 2. a word that falls apart: N from the vocabulary
        await pilot.press("pagedown")
        assert panel.step.key == "split"
        goal = facts.split_goal(tokenizer)
        assert f"{goal} токенов" in str(panel.query_one("#lesson-task").render())
        assert not await answer(pilot, panel, one)
        assert not await answer(pilot, panel, "ааааа")   # not a word
        assert "буква три раза подряд" in verdict_line(panel)
        assert await answer(pilot, panel, many)

        # 3. the logits' shape: (1, T, V) from the tokenizer and the output layer
        await pilot.press("pagedown")
        t = len(tokenizer(STEP["tensors"].example)["input_ids"])
        v = session.model.get_output_embeddings().weight.shape[0]
        assert not await answer(pilot, panel, f"1, {t + 1}, {v}")
        assert "токенов" in verdict_line(panel)
        assert not await answer(pilot, panel, f"{t} {v}")
        assert await answer(pilot, panel, f"(1, {t}, {v})")

        # 4. inside: the first block whose top next token at the last position is the model's
        await pilot.press("pagedown")
        assert panel.step.key == "inside"
        await wait_for(pilot, lambda: app.active_tab() == "inside" and
                       app.inside_pane.query_one("#inside-prompt").text == STEP["inside"].example)
        lens = logit_lens(session, prompt_ids(session, STEP["inside"].example))
        tops = [row[-1].top[0][0] for row in lens]
        settled = next(layer for layer, token in enumerate(tops) if token == tops[-1])
        wrong = next((layer for layer in range(len(tops)) if layer != settled), None)
        assert not await answer(pilot, panel, "первый")
        assert "номер" in verdict_line(panel)
        assert not await answer(pilot, panel, str(wrong))
        assert not await answer(pilot, panel, str(len(tops) + 3))
        assert await answer(pilot, panel, str(settled))

        # 5. top-k: set in the Generate pane, checked in the candidates it leaves
        await pilot.press("pagedown")
        assert app.active_tab() == "generate"
        app.generate_pane.query_one("#gen-top-k", Input).value = "40"
        app.generate_pane.query_one("#gen-top-p", Input).value = "1.0"
        assert not await answer(pilot, panel, "")
        app.generate_pane.query_one("#gen-top-k", Input).value = "3"
        assert await answer(pilot, panel, "")
        app.generate_pane.query_one("#gen-top-p", Input).value = "0.0001"   # leaves fewer
        assert not await answer(pilot, panel, "") and "top-p" in verdict_line(panel)
        app.generate_pane.query_one("#gen-top-p", Input).value = "1.0"

        # 6. data: blocks of 64, counted from the data itself
        await pilot.press("pagedown")
        assert app.active_tab() == "train"
        assert not await answer(pilot, panel, "100")            # block size not 64 yet
        app.train_pane.query_one("#train-block-size", Input).value = "64"
        blocks = facts.training_blocks(tokenizer, app.train_pane.form.read_config())
        assert not await answer(pilot, panel, str(blocks + 1))
        assert await answer(pilot, panel, str(blocks))

        # 7. fine-tuning: the held-out loss below a share of where it started
        await pilot.press("pagedown")
        assert not await answer(pilot, panel, "")               # no run yet
        app.train_pane.query_one("#train-epochs", Input).value = "2"
        await pilot.press("f8")
        await wait_for(pilot, lambda: app.train_pane.run is not None and not app.train_pane.run.running,
                       timeout=240)
        run = app.train_pane.run
        start = run.evals[0][1]
        assert min(loss for _, loss in run.evals) < start * TARGET_SHARE
        assert await answer(pilot, panel, "")
        # the task names the goal, from this run's loss before training
        assert f"{start * TARGET_SHARE:.2f}" in str(panel.query_one("#lesson-task").render())

        # 8. before and after: nothing to check
        await pilot.press("pagedown")
        assert panel.step.key == "compare" and await answer(pilot, panel, "")

        # English (the step's verdict too), and any step can be revisited
        await pilot.press("ctrl+y")
        assert f"Lesson {len(LESSON)}/{len(LESSON)}" in str(panel.query_one("#lesson-title").render())
        await wait_for(pilot, lambda: "lesson complete" in verdict_line(panel))
        await pilot.press("pageup", "pageup", "pageup")
        assert panel.step.key == "sampling" and "✓" in str(panel.query_one("#lesson-title").render())
        await pilot.pause(1.5)   # settings are written a second after they change

    saved, problem = load_settings()
    assert problem is None
    assert saved.lesson["language"] == "en" and saved.lesson["step"] == "sampling"
    assert set(saved.lesson["done"]) == set(STEP)

    # the next start opens the lesson where it was left
    app = RuGPTApp(session=session)
    async with app.run_test(size=(120, 40)) as pilot:
        panel = await ready(pilot)
        assert panel.step.key == "sampling" and panel.language == "en"


@pytest.mark.parametrize("family_model", ["llama"], indirect=True)
async def test_the_tokenizer_steps_on_the_tiny_llama(family_session):
    session, tokenizer = family_session, family_session.tokenizer
    app = RuGPTApp(session=session, lesson=True)
    async with app.run_test(size=(120, 40)) as pilot:
        panel = await ready(pilot)
        one, many = one_token_word(tokenizer), many_token_word(tokenizer)
        assert not await answer(pilot, panel, many)
        assert await answer(pilot, panel, one)
        await pilot.press("pagedown")
        assert not await answer(pilot, panel, one)
        assert await answer(pilot, panel, many)
        await pilot.press("pagedown")
        # Llama's tokenizer adds a start token: T counts it, as the model receives it
        t = len(tokenizer(STEP["tensors"].example)["input_ids"])
        v = session.model.get_output_embeddings().weight.shape[0]
        assert tokenizer.bos_token_id in tokenizer(STEP["tensors"].example)["input_ids"]
        assert not await answer(pilot, panel, f"1 {t - 1} {v}")
        assert await answer(pilot, panel, f"1 {t} {v}")


async def test_f12_opens_closes_and_returns_to_the_lesson(demo_session):
    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.panes_ready())
        panel = app.query_one(LessonPanel)
        assert not panel.display
        await pilot.press("f12")
        await wait_for(pilot, lambda: panel.display)
        await pilot.press("escape")                    # back to the pane beside it
        assert app.focused is app.tokenize_pane.query_one("#tok-input")
        await pilot.press("f12")                       # back to the lesson
        assert app.focused is panel.query_one("#lesson-answer")
        await pilot.press("f12")                       # and closed
        assert not panel.display


def test_a_bad_lesson_table_in_the_settings_is_one_line(workspace_home):
    from core.store.workspace import settings_path

    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('[lesson]\nlanguage = "de"\n', encoding="utf-8")
    saved, problem = load_settings()
    assert saved.lesson == {} and "lesson.language" in problem and "\n" not in problem


async def lesson_at(pilot, steps: int) -> None:
    panel = await ready(pilot)
    for _ in range(steps):
        await pilot.press("pagedown")
    await wait_for(pilot, lambda: panel.index == steps
                   and pilot.app.focused is panel.query_one("#lesson-answer"))


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_lesson_tokens_snapshot(snap_compare, frozen_figures, demo_session, size):
    async def first(pilot):
        await lesson_at(pilot, 0)
        await wait_for(pilot, lambda: pilot.app.tokenize_pane.view is not None
                       and pilot.app.tokenize_pane.view.text == STEP["tokens"].example)
    assert snap_compare(RuGPTApp(session=demo_session, lesson=True), terminal_size=size, run_before=first)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_lesson_sampling_snapshot(snap_compare, frozen_figures, demo_session, size):
    async def sampling(pilot):
        await lesson_at(pilot, 4)
        app = pilot.app   # the prompt's logits inspected (it draws once they are)
        assert app.query_one(LessonPanel).step.key == "sampling"
        await wait_for(pilot, lambda: "(1, " in str(app.query_one("#gen-inspector").render()))
        await pilot.pause()
    assert snap_compare(RuGPTApp(session=demo_session, lesson=True), terminal_size=size, run_before=sampling)
