"""Batch prediction of a file in chunks: the same predictions as reading it whole, chunks of bounded size, errors
naming the row in the file, nothing half-written, every format, and a progress bar on a terminal."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import deepwright as dp
from deepwright.data.stream import read_chunks, read_delimited_bytes
from deepwright.deploy.batch import predict_file
from deepwright.deploy.predictor import Predictor
from deepwright.errors import DataError
from tests.helpers import TARGET, Trained, make_frame, write_frame

COLUMNS = ["age", "city", "member", "income"]


@pytest.fixture(scope="module")
def predictor(trained: Trained) -> Predictor:
    return Predictor.from_bundle(trained.result.bundle_dir)


@pytest.fixture
def rows() -> pd.DataFrame:
    return make_frame(95, seed=4)


def assert_same_predictions(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(actual.columns) == list(expected.columns)
    assert actual[f"{TARGET}_prediction"].tolist() == expected[f"{TARGET}_prediction"].tolist()
    assert np.allclose(actual[f"{TARGET}_probability"], expected[f"{TARGET}_probability"], atol=1e-6)


def test_chunks_give_the_same_predictions_as_the_whole_file(
    predictor: Predictor, rows: pd.DataFrame, tmp_path: Path
) -> None:
    data = write_frame(rows, tmp_path / "rows.csv")
    count = predict_file(predictor, data, tmp_path / "out.csv", chunk_rows=10, progress=False)
    assert count == 95
    assert_same_predictions(pd.read_csv(tmp_path / "out.csv"), predictor.predict(rows).reset_index(drop=True))


def test_chunks_are_bounded_and_numbered_by_file_row(rows: pd.DataFrame, tmp_path: Path) -> None:
    data = write_frame(rows.assign(extra="x"), tmp_path / "rows.csv")
    chunks = list(read_chunks(data, columns=COLUMNS, chunk_rows=20))
    assert [len(chunk.table) for chunk in chunks] == [20, 20, 20, 20, 15]
    assert [chunk.table.frame.index[0] for chunk in chunks] == [0, 20, 40, 60, 80]
    assert list(chunks[0].table.frame.columns) == COLUMNS  # only the input columns are read
    assert [chunk.done for chunk in chunks] == sorted(chunk.done for chunk in chunks) and chunks[-1].done == 1.0
    assert pd.api.types.is_string_dtype(chunks[0].table.frame["age"])  # a later chunk cannot change a column's type


def test_a_bad_value_is_named_by_its_row_in_the_file(predictor: Predictor, rows: pd.DataFrame, tmp_path: Path) -> None:
    rows["age"] = rows["age"].astype(object)
    rows.loc[71, "age"] = "old"
    data = write_frame(rows, tmp_path / "rows.csv")
    with pytest.raises(DataError) as caught:
        predict_file(predictor, data, tmp_path / "out.csv", chunk_rows=10, progress=False)
    assert (
        str(caught.value)
        == f"{data}, row 72, column 'age': value 'old' is not a number; fix it, or declare the column as category"
    )
    assert not (tmp_path / "out.csv").exists()
    assert [path.name for path in tmp_path.iterdir()] == ["rows.csv"]  # no partial file left


def test_a_missing_column_is_named_before_anything_is_read(
    predictor: Predictor, rows: pd.DataFrame, tmp_path: Path
) -> None:
    data = write_frame(rows.drop(columns=["city"]), tmp_path / "rows.csv")
    with pytest.raises(DataError, match="input column 'city' not found"):
        predict_file(predictor, data, tmp_path / "out.csv", progress=False)


@pytest.mark.parametrize("suffix", [".tsv", ".parquet", ".jsonl", ".json", ".csv.gz"])
def test_every_format(predictor: Predictor, rows: pd.DataFrame, tmp_path: Path, suffix: str) -> None:
    if suffix == ".csv.gz":
        data = tmp_path / "rows.csv.gz"
        data.write_bytes(gzip.compress(rows.to_csv(index=False).encode()))
    else:
        data = write_frame(rows, tmp_path / f"rows{suffix}")
    predict_file(predictor, data, tmp_path / "out.csv", chunk_rows=30, progress=False)
    assert_same_predictions(pd.read_csv(tmp_path / "out.csv"), predictor.predict(rows).reset_index(drop=True))


def test_empty_files(predictor: Predictor, tmp_path: Path) -> None:
    (tmp_path / "header.csv").write_text("age,city,member,income\n")
    with pytest.raises(DataError, match="has a header but no data rows"):
        predict_file(predictor, tmp_path / "header.csv", tmp_path / "out.csv", progress=False)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="the file is empty"):
        predict_file(predictor, tmp_path / "empty.csv", tmp_path / "out.csv", progress=False)
    with pytest.raises(DataError, match="no such file"):
        predict_file(predictor, tmp_path / "absent.csv", tmp_path / "out.csv", progress=False)
    assert not (tmp_path / "out.csv").exists()


def test_quoted_newlines_and_a_byte_order_mark(predictor: Predictor, rows: pd.DataFrame, tmp_path: Path) -> None:
    text = rows.head(5).assign(city=lambda frame: frame["city"]).to_csv(index=False)
    data = tmp_path / "bom.csv"
    data.write_bytes(b"\xef\xbb\xbf" + text.encode())
    [chunk] = list(read_chunks(data, columns=COLUMNS, chunk_rows=100))
    assert list(chunk.table.frame.columns) == COLUMNS and len(chunk.table) == 5
    quoted = read_delimited_bytes(b'age,city,member,income\n1,"Ly\non",yes,2\n', columns=COLUMNS, source="upload")
    assert quoted.frame["city"].tolist() == ["Ly\non"]


def test_the_predict_command_streams_to_a_file_and_to_standard_output(trained: Trained, cli, tmp_path: Path) -> None:
    bundle = trained.result.bundle_dir
    written = cli(
        "predict", "--model", bundle, "--data", trained.data, "--output", "p.csv", "--chunk-rows", "7", cwd=tmp_path
    )
    assert written.returncode == 0 and written.stderr.strip() == "wrote 120 predictions to p.csv"
    printed = cli("predict", "--model", bundle, "--data", trained.data, "--chunk-rows", "50", cwd=tmp_path)
    assert printed.returncode == 0
    expected = dp.load(bundle).predict(trained.data)
    assert_same_predictions(pd.read_csv(tmp_path / "p.csv"), expected)
    assert_same_predictions(pd.read_csv(io.StringIO(printed.stdout)), expected)
    with pytest.raises(SystemExit) as refused:
        cli("predict", "--model", bundle, "--data", trained.data, "--chunk-rows", "0", cwd=tmp_path)
    assert refused.value.code == 2


def test_a_progress_bar_on_a_terminal(
    predictor: Predictor, rows: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = io.StringIO()
    terminal.isatty = lambda: True  # type: ignore[method-assign]
    monkeypatch.setattr("sys.stderr", terminal)
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setenv("COLUMNS", "120")
    data = write_frame(rows, tmp_path / "rows.csv")
    predict_file(predictor, data, tmp_path / "out.csv", chunk_rows=10, progress=True)
    shown = terminal.getvalue()
    assert "predicting rows.csv" in shown and "95 rows" in shown and "100%" in shown
    quiet = io.StringIO()
    quiet.isatty = lambda: True  # type: ignore[method-assign]
    monkeypatch.setattr("sys.stderr", quiet)
    predict_file(predictor, data, tmp_path / "out.csv", chunk_rows=10, progress=False)
    assert quiet.getvalue() == ""
