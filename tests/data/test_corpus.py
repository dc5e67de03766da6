"""Reading a language model's corpus: a text file, a folder of files, or a table's text column; UTF-8 errors name the
file and byte offset; empty corpora are refused; the split is nanoGPT's."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from deepwright.config import CorpusConfig
from deepwright.data.corpus import decode_utf8, infer_language_model_config, read_corpus, split_text
from deepwright.errors import ConfigError, DataError


def test_a_text_file(tmp_path: Path) -> None:
    path = tmp_path / "poem.txt"
    path.write_text("Roses are red,\nviolets are blue.\n", encoding="utf-8")
    corpus = read_corpus(path, CorpusConfig())
    assert corpus.text == "Roses are red,\nviolets are blue.\n"
    assert corpus.documents == 1 and corpus.source == str(path)


def test_a_folder_of_text_files_in_sorted_order_skipping_empty_and_other_files(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "2.txt").write_text("second", encoding="utf-8")
    (tmp_path / "1.txt").write_text("first", encoding="utf-8")
    (tmp_path / "3.txt").write_text("  \n", encoding="utf-8")
    (tmp_path / "notes.md").write_text("not read", encoding="utf-8")
    corpus = read_corpus(tmp_path, CorpusConfig(separator="|"))
    assert corpus.text == "first|second"
    assert (corpus.documents, corpus.empty_documents) == (3, 1)
    assert "1 empty skipped" in corpus.summary()
    assert read_corpus(tmp_path, CorpusConfig(suffixes=[".md"])).text == "not read"


def test_a_text_column_of_a_table_or_frame(tmp_path: Path) -> None:
    frame = pd.DataFrame({"id": [1, 2, 3], "line": ["one", None, "three"]})
    corpus = read_corpus(frame, CorpusConfig(column="line", separator="\n"))
    assert corpus.text == "one\nthree" and corpus.empty_documents == 1
    frame.to_csv(tmp_path / "lines.csv", index=False)
    assert read_corpus(tmp_path / "lines.csv", CorpusConfig(column="line", separator="\n")).text == "one\nthree"
    with pytest.raises(ConfigError, match=r"corpus\.column: .*lines\.csv is a table; name its text column"):
        read_corpus(tmp_path / "lines.csv", CorpusConfig())
    with pytest.raises(DataError, match="corpus column 'text' not found"):
        read_corpus(frame, CorpusConfig(column="text"))


def test_bytes_that_are_not_utf8_name_the_file_and_offset(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("abc\ncafé".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1\.txt: byte 7 \(0xe9\) is not valid UTF-8.*encoding_errors: replace"):
        read_corpus(path, CorpusConfig())
    corpus = read_corpus(path, CorpusConfig(encoding_errors="replace"))
    assert corpus.text == "abc\ncaf\ufffd" and corpus.replaced_bytes == 1
    assert "1 bytes that were not UTF-8 replaced" in corpus.summary()


def test_the_offset_counts_a_byte_order_mark_and_the_mark_is_dropped() -> None:
    assert decode_utf8(b"\xef\xbb\xbfhi", "x") == ("hi", 0)
    with pytest.raises(DataError, match="byte 5 "):
        decode_utf8(b"\xef\xbb\xbfhi\xff", "x")


def test_a_folder_names_the_bad_file(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text("fine", encoding="utf-8")
    (tmp_path / "bad.txt").write_bytes(b"\x80")
    with pytest.raises(DataError, match=r"bad\.txt: byte 0 \(0x80\)"):
        read_corpus(tmp_path, CorpusConfig())


@pytest.mark.parametrize("content", ["", "   \n\n "], ids=["empty", "blank"])
def test_an_empty_corpus_is_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=r"empty\.txt: the corpus is empty"):
        read_corpus(path, CorpusConfig())


def test_empty_folders_columns_and_missing_paths_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"holds no \.txt files"):
        read_corpus(tmp_path, CorpusConfig())
    with pytest.raises(DataError, match="the corpus is empty"):
        read_corpus(pd.DataFrame({"text": ["", None]}), CorpusConfig(column="text"))
    with pytest.raises(DataError, match="no such file or folder"):
        read_corpus(tmp_path / "absent.txt", CorpusConfig())


def test_split_is_nanogpts_first_90_percent() -> None:
    text = "x" * 1_115_394  # Tiny Shakespeare's length: nanoGPT trains on 1,003,854 characters
    train, validation = split_text(text, 0.1)
    assert (len(train), len(validation)) == (1_003_854, 111_540)
    assert split_text("abc", 0.0) == ("abc", "")


def test_infer_a_language_model_config(tmp_path: Path) -> None:
    path = tmp_path / "poem.txt"
    path.write_text("hello there\n" * 10, encoding="utf-8")
    inference = infer_language_model_config(path)
    assert inference.config["model_type"] == "lm"
    assert inference.config["tokenizer"] == {"type": "char"}
    assert any("distinct characters" in note for note in inference.notes)
