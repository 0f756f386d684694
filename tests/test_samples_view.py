"""What the model is trained on: `train --dry-run` and the Train pane's samples window (ctrl+w)
show the data's rows as the training batches carry them, and mark exactly the tokens whose
labels the loss covers."""

import json

from textual.widgets import Input, Static

from core.base.paths import resource
from core.data.rows import collate, trained_row
from core.model.session import load_session
from core.store.database import Store
from core.tokens.pieces import piece_table
from core.training.batches import prepare_data
from core.training.config import TrainConfig
from tests.helpers import cli, wait_for
from tui.panes.train.samples import SamplesScreen
from tui.render.chips import UNSCORED_STYLE, sample_text
from tui.shell.app import RuGPTApp

CHATS = [{"messages": [{"role": "user", "content": "Где спал кот?"},
                       {"role": "assistant", "content": "Кот спал на окне."}]},
         {"messages": [{"role": "user", "content": "Расскажи про пса."},
                       {"role": "assistant", "content": "Пёс гулял у реки, а потом спал."}]}] * 6


def chats_file(tmp_path):
    path = tmp_path / "chats.jsonl"
    path.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in CHATS), encoding="utf-8")
    return path


def batch_labels(session, path, pack: bool):
    """The first batch a run would train on (the run's own collate), and the rows it is of."""
    config = TrainConfig(train=str(path), pack=pack, block_size=64).validate()
    prepared = prepare_data(session.tokenizer, config, 64)
    pad = session.tokenizer.pad_token_id
    rows = [prepared.train_rows[i] for i in range(2)]
    return prepared.train_rows, collate(pad)(rows)["labels"], pad


def test_a_row_marks_exactly_the_tokens_the_loss_covers(demo_dir, tmp_path):
    session = load_session("demo", device="cpu")
    for pack in (True, False):
        rows, labels, pad = batch_labels(session, chats_file(tmp_path), pack)
        for i in range(2):
            ids, scored = trained_row(rows, i, pad)
            covered = (labels[i, 1:len(ids)] != -100).tolist()   # the model shifts labels by one
            assert scored[1:] == covered and not scored[0]
            assert 0 < sum(scored) < len(ids)   # dialogues: the prompts are not learned
            text = sample_text(piece_table(session.tokenizer), ids, scored)
            struck = [UNSCORED_STYLE in str(span.style) for span in text.spans]
            assert struck == [not s for s in scored]


def test_dry_run_shows_the_rows_and_trains_nothing(demo_dir, tmp_path):
    out = tmp_path / "never"
    result = cli("train", "--model", "demo", "--train", str(chats_file(tmp_path)), "--dry-run",
                 "--out", str(out))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("train: ") and "conversations" in result.stdout
    assert "row 1 of " in result.stdout and "⟦" in result.stdout and "</s>" in result.stdout
    assert not out.exists() and Store.open().runs() == []


async def test_the_samples_window_pages_through_the_rows_as_trained(demo_session, tmp_path):
    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f4")
        app.query_one("#train-data", Input).value = str(resource("dialogues_ru.jsonl"))
        await wait_for(pilot, lambda: app.train_pane.form.prepared is not None
                       and "conversations" in str(app.query_one("#train-preview").render()), timeout=60)
        await pilot.press("ctrl+w")
        await wait_for(pilot, lambda: isinstance(app.screen, SamplesScreen))
        screen = app.screen
        prepared, block, tokenizer = app.train_pane.form.prepared

        def shown():
            return screen.query_one("#samples-row", Static).render().plain

        def expected(rows, i):
            ids, scored = trained_row(rows, i, tokenizer.pad_token_id)
            return sample_text(piece_table(tokenizer), ids, scored).plain

        assert "train row 1 of" in str(screen.query_one("#samples-title").render())
        assert shown() == expected(prepared.train_rows, 0)
        await pilot.press("right", "right")
        assert shown() == expected(prepared.train_rows, 2)
        await pilot.press("t")
        assert "test row 1 of" in str(screen.query_one("#samples-title").render())
        assert shown() == expected(prepared.test_rows, 0)
        await pilot.press("ctrl+w")
        await pilot.pause()
        assert len(app.screen_stack) == 1
        await pilot.press("f10", "ctrl+w")   # on the Chat tab it is the chat's own view
        await pilot.pause()
        assert len(app.screen_stack) == 1
