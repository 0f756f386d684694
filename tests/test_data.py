"""Loading and validating training data; every bad case is one line with file:line, exit 2."""

import json

import numpy as np
import pytest

from core.base.errors import UserError
from core.data.cache import TokenizedSplit
from core.data.rows import PackedRows, PaddedRows, pad_rows
from core.data.texts import load_texts, split_mask
from tui.cli.main import main as cli_main


def write(tmp_path, name, content, mode="w"):
    path = tmp_path / name
    if mode == "wb":
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_txt_one_sample_per_line_blank_lines_skipped(tmp_path):
    path = write(tmp_path, "a.txt", "первая строка\n\n  \nвторая строка\n")
    ds = load_texts(str(path))
    assert list(ds["text"]) == ["первая строка", "вторая строка"]


def test_jsonl_with_input_field_the_notebook_format(tmp_path):
    lines = [json.dumps({"input": f"текст {i}", "other": 1}, ensure_ascii=False) for i in range(3)]
    ds = load_texts(str(write(tmp_path, "a.jsonl", "\n".join(lines) + "\n")))
    assert list(ds["text"]) == ["текст 0", "текст 1", "текст 2"]
    assert ds.column_names == ["text"]


def test_json_array_and_text_field(tmp_path):
    path = write(tmp_path, "a.json", json.dumps([{"text": "раз"}, {"text": "два"}], ensure_ascii=False))
    assert list(load_texts(str(path))["text"]) == ["раз", "два"]


def test_csv_text_column(tmp_path):
    path = write(tmp_path, "a.csv", "id,text\n1,\"один, с запятой\"\n2,два\n")
    assert list(load_texts(str(path))["text"]) == ["один, с запятой", "два"]


def test_folder_of_txt_one_sample_per_file(tmp_path):
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "b.txt").write_text("вторая\nс двумя строками", encoding="utf-8")
    (folder / "a.txt").write_text("первая", encoding="utf-8")
    (folder / "skip.md").write_text("не текст для обучения", encoding="utf-8")
    texts = sorted(load_texts(str(folder))["text"])
    assert texts == ["вторая\nс двумя строками", "первая"]


def test_seeded_held_out_split(tmp_path):
    path = write(tmp_path, "a.txt", "\n".join(f"строка {i}" for i in range(50)))
    ds = load_texts(str(path))
    held = split_mask(len(ds), 0.1, seed=1)
    assert held.sum() == 5 and (held == split_mask(len(ds), 0.1, seed=1)).all()
    assert not (held == split_mask(len(ds), 0.1, seed=2)).all()
    assert split_mask(2, 0.9, seed=0).sum() == 1   # at least one sample on each side


BAD_CASES = [
    ("empty.txt", b"", "empty.txt: the file is empty"),
    ("blank.txt", b"\n  \n\n", "blank.txt: the file is empty"),
    ("bad.jsonl", '{"input": "ок"}\n{"input": "нет"\n'.encode(), "bad.jsonl:2: bad JSON"),
    ("field.jsonl", '{"input": "ок"}\n{"input": "ок"}\n{"body": "нет"}\n'.encode(),
     "field.jsonl:3: no 'input' or 'text' field"),
    ("notobj.jsonl", b'{"text": "a"}\n[1, 2]\n', "notobj.jsonl:2: expected a JSON object"),
    ("latin1.txt", "строка\nещё строка\n".encode() + "caf\xe9\n".encode("latin-1"),
     "latin1.txt:3: not valid UTF-8"),
    ("binary.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary.txt: looks like a binary file"),
    ("nocol.csv", b"id,body\n1,x\n", "nocol.csv:1: no 'text' or 'input' column"),
    ("ragged.csv", b"id,text\n1,x\n2,y,z\n", "ragged.csv:3: 3 fields, the header has 2"),
    ("data.parquet", b"PAR1", "unsupported file type '.parquet'"),
]


@pytest.mark.parametrize("name,content,message", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_data_is_one_clear_line(tmp_path, name, content, message):
    path = write(tmp_path, name, content, mode="wb")
    with pytest.raises(UserError) as err:
        load_texts(str(path))
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("name,content,message", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_data_cli_exit_2(tmp_path, capsys, demo_dir, name, content, message):
    path = write(tmp_path, name, content, mode="wb")
    code = cli_main(["train", "--model", "demo", "--device", "cpu", "--train", str(path),
                     "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and message in err[0] and "Traceback" not in err[0]
    assert not (tmp_path / "out").exists()


def test_missing_path_and_offline_hub_dataset(tmp_path):
    with pytest.raises(UserError, match="no such file or folder"):
        load_texts(str(tmp_path / "nope.txt"))
    with pytest.raises(UserError, match="dataset 'someone/some-dataset'"):
        load_texts("someone/some-dataset")


def stream(texts: list[list[int]], eos: int) -> TokenizedSplit:
    """Texts' ids as the token cache keeps them: each followed by EOS, end to end."""
    ids = [t for text in texts for t in (*text, eos)]
    starts = np.cumsum([0] + [len(text) + 1 for text in texts])
    return TokenizedSplit(np.array(ids, np.uint16), starts.astype(np.int64))


def test_pad_mode_masks_padding_only_never_eos():
    eos = pad = 2  # old-style tokenizers: the pad id *is* the EOS id
    rows = PaddedRows(stream([[10, 11, 12], [], [20]], eos), block_size=16)
    assert len(rows) == 2   # a text that tokenized to nothing makes no row
    batch = pad_rows([rows[0], rows[1]], pad)
    assert batch["input_ids"].tolist() == [[10, 11, 12, 2], [20, 2, 2, 2]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    # the real EOS after each text is learned; only the padding is skipped
    assert batch["labels"].tolist() == [[10, 11, 12, 2], [20, 2, -100, -100]]


def test_pad_mode_truncates_to_block_size():
    rows = PaddedRows(stream([list(range(10, 30))], eos=2), block_size=8)
    assert [row.tolist() for row in rows] == [list(range(10, 18))]


def test_pack_mode_has_no_padding():
    blocks = PackedRows(stream([[5, 6, 7], [8, 9], [10, 11, 12, 13]], eos=2), block_size=4)
    assert [row.tolist() for row in blocks] == [[5, 6, 7, 2], [8, 9, 2, 10], [11, 12, 13, 2]]
    tiny = PackedRows(stream([[5]], eos=2), block_size=4)
    assert [row.tolist() for row in tiny] == [[5, 2]]
    batch = pad_rows([blocks[i] for i in range(len(blocks))], 0)
    assert batch["labels"].tolist() == [row.tolist() for row in blocks]
