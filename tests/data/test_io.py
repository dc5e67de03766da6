"""read_table: every supported format gives the same table; every unreadable input is a DataError naming it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from deepwright.data.io import Table, atomic_path, read_table
from deepwright.errors import DataError
from tests.helpers import write_frame


@pytest.fixture
def small() -> pd.DataFrame:
    return pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", None], "c": [0.5, np.nan, 2.0]})


def assert_same_values(frame: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(frame.columns) == list(expected.columns)
    assert len(frame) == len(expected)
    assert frame["a"].tolist() == [1, 2, 3]
    assert frame["b"].iloc[:2].tolist() == ["x", "y"]
    assert pd.isna(frame["b"].iloc[2])
    assert frame["c"].iloc[0] == 0.5
    assert np.isnan(frame["c"].iloc[1])


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet", ".jsonl", ".json"])
def test_files_of_every_format(tmp_path: Path, small: pd.DataFrame, suffix: str) -> None:
    path = write_frame(small, tmp_path / f"table{suffix}")
    table = read_table(path)
    assert_same_values(table.frame, small)
    assert table.source == str(path)
    assert table.base_dir == tmp_path.resolve()
    assert len(table) == 3


def test_string_path(tmp_path: Path, small: pd.DataFrame) -> None:
    path = write_frame(small, tmp_path / "table.csv")
    assert_same_values(read_table(str(path)).frame, small)


def test_data_frame_gets_a_fresh_row_index(small: pd.DataFrame) -> None:
    shuffled = small.set_axis([10, 20, 30])
    table = read_table(shuffled)
    assert table.frame.index.tolist() == [0, 1, 2]
    assert table.source == "the data frame"
    assert_same_values(table.frame, small)
    assert read_table(small, name="mine").source == "mine"


def test_arrow_table(small: pd.DataFrame) -> None:
    table = read_table(pa.Table.from_pandas(small, preserve_index=False))
    assert table.source == "the Arrow table"
    assert_same_values(table.frame, small)


def test_a_table_passes_through(small: pd.DataFrame) -> None:
    table = read_table(small)
    assert read_table(table) is table


def test_unsupported_source_type() -> None:
    with pytest.raises(DataError, match="cannot read data from a int"):
        read_table(3)


def read_error(path: Path) -> str:
    with pytest.raises(DataError) as caught:
        read_table(path)
    assert caught.value.source == str(path)
    message = str(caught.value)
    assert message.startswith(str(path))
    assert "\n" not in message
    return message


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    assert "empty" in read_error(path)


def test_header_only_file(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("a,b\n")
    assert "no data rows" in read_error(path)


def test_missing_file(tmp_path: Path) -> None:
    assert "no such file" in read_error(tmp_path / "missing.csv")


def test_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    assert "folder" in read_error(folder)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_binary_garbage(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"garbage{suffix}"
    path.write_bytes(np.random.default_rng(0).bytes(4000))
    assert "cannot be read" in read_error(path)


def test_ragged_csv(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("a,b\n1,2\n3\n")
    assert "cannot be read as CSV" in read_error(path)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file(tmp_path: Path) -> None:
    path = write_frame(pd.DataFrame({"a": [1]}), tmp_path / "locked.csv")
    path.chmod(0)
    try:
        assert "permission denied" in read_error(path)
    finally:
        path.chmod(0o644)


def test_permission_error_is_a_data_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same path as above, for when the tests run as root (who may read any file)."""
    path = write_frame(pd.DataFrame({"a": [1]}), tmp_path / "locked.csv")

    def refuse(path: Path) -> pd.DataFrame:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setitem(read_table.__globals__["_READERS"], "csv", refuse)
    assert "permission denied" in read_error(path)


def test_require_columns_names_every_missing_column(small: pd.DataFrame) -> None:
    table = Table(small, "t.csv", Path("."))
    table.require_columns(["a", "b"], "input")
    with pytest.raises(DataError) as caught:
        table.require_columns(["a", "zz", "yy"], "input")
    message = str(caught.value)
    assert message.startswith("t.csv:")
    assert "'zz'" in message
    assert "'yy'" in message
    assert "'a', 'b', 'c'" in message  # what the data does have


def test_atomic_path_renames_on_success(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.txt"
    with atomic_path(target) as temporary:
        temporary.write_text("done")
        assert not target.exists()
    assert target.read_text() == "done"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]


def test_atomic_path_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
