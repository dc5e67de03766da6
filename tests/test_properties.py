"""Property tests (hypothesis): random configs and random tables never end in a traceback.

Whatever a config holds (keys from the JSON Schema at any depth, inf and NaN, huge integers, wrong types) and
whatever a delimited file holds (mixed types, empty cells, unicode, quotes and separators in cells, huge and tiny
numbers, duplicate names, several encodings and line endings), the answer is a result or a `DeepwrightError`
naming the cause. Examples are derandomized, so a run is repeatable, and bounded so that the file takes seconds.
"""

from __future__ import annotations

import copy
import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepwright.config import json_schema, load_config
from deepwright.data.infer import infer_config
from deepwright.data.io import Table, read_table
from deepwright.data.stream import read_chunks, read_delimited_bytes
from deepwright.errors import DataError, DeepwrightError
from deepwright.features.featureset import FeatureSet
from tests.helpers import make_config

BOUNDED = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)


# -- configs --------------------------------------------------------------------------------------------------


def schema_keys(node: Any) -> set[str]:
    """Every property name anywhere in a JSON Schema."""
    keys: set[str] = set()
    if isinstance(node, dict):
        keys |= set(node.get("properties", {}))
        for value in node.values():
            keys |= schema_keys(value)
    elif isinstance(node, list):
        for value in node:
            keys |= schema_keys(value)
    return keys


KEYS = sorted(schema_keys(json_schema("ecd")) | schema_keys(json_schema("forecast")) | schema_keys(json_schema("lm")))
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["number", "category", "binary", "text", "sequence", "timeseries", "image", "audio", "lm"]),
    st.sampled_from(["forecast", "ecd", "adam", "sgd", "cosine", "plateau", "zscore", "minmax", "log", "none"]),
    st.text(max_size=8),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=3),
    max_leaves=6,
)


def paths_of(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a dict key or list item in a config."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += paths_of(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += paths_of(value, (*prefix, index))
    return found


@st.composite
def mutated_configs(draw: st.DrawFn) -> dict:
    """A valid config with one to three keys set to random values, added (names from the schema) or removed."""
    config = copy.deepcopy(make_config())
    for _ in range(draw(st.integers(1, 3))):
        paths = paths_of(config)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = config
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["set", "add", "remove"]))
        if action == "remove":
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(KEYS))] = draw(VALUES)
        else:
            parent[path[-1]] = draw(VALUES)
    return config


@BOUNDED
@given(mutated_configs())
def test_a_random_config_loads_or_is_a_deepwright_error(config: dict) -> None:
    try:
        loaded = load_config(config)
    except DeepwrightError as error:
        assert str(error)
        return
    for number in _numbers(loaded.model_dump()):
        assert np.isfinite(number)  # inf and NaN never get through


def _numbers(node: Any) -> list[float]:
    if isinstance(node, dict):
        return [number for value in node.values() for number in _numbers(value)]
    if isinstance(node, list):
        return [number for value in node for number in _numbers(value)]
    return [node] if isinstance(node, float) else []


# -- tables ---------------------------------------------------------------------------------------------------

CELLS = st.one_of(
    st.none(),
    st.just(""),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, -1e308, 1e-308, 5e-324, 3.4e38, "1e309", "-inf", "nan", "NA", "null"]),
    st.text(alphabet=st.sampled_from('ab ,;"\t\r\nÿé中😀\x00'), max_size=6),
    st.sampled_from(["Lyon", "Nice", "Nîce", "yes", "no", "1", "0", "2024-01-02"]),
)
NAMES = st.text(alphabet=st.sampled_from('abcé ,"\t'), min_size=1, max_size=4)
ENCODINGS = ["utf-8", "utf-8-sig", "latin-1", "cp1252", "utf-16"]


@st.composite
def delimited_files(draw: st.DrawFn) -> tuple[bytes, list[str], str]:
    """A delimited file's bytes, its header names and its delimiter: random cells, names (duplicates possible),
    line endings and encoding."""
    width = draw(st.integers(1, 4))
    names = draw(st.lists(NAMES, min_size=width, max_size=width))
    rows = draw(st.lists(st.lists(CELLS, min_size=width, max_size=width), min_size=0, max_size=6))
    delimiter = draw(st.sampled_from([",", "\t"]))
    ending = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = io.StringIO()
    writer = csv.writer(text, delimiter=delimiter, lineterminator=ending)
    writer.writerow(names)
    writer.writerows([["" if cell is None else cell for cell in row] for row in rows])
    encoding = draw(st.sampled_from(ENCODINGS))
    return text.getvalue().encode(encoding, errors="replace"), names, delimiter


def _no_bytes(table: Table) -> None:
    for column in table.frame.columns:
        assert not any(isinstance(value, bytes) for value in table.frame[column]), column


@BOUNDED
@given(delimited_files())
def test_a_random_delimited_file_reads_the_same_everywhere_or_is_a_data_error(
    tmp_path: Path, drawn: tuple[bytes, list[str], str]
) -> None:
    data, names, delimiter = drawn
    path = tmp_path / ("table.csv" if delimiter == "," else "table.tsv")
    path.write_bytes(data)
    results: dict[str, Any] = {}
    readers = {
        "read_table": lambda: read_table(path),
        "chunks": lambda: [chunk.table for chunk in read_chunks(path, columns=names[:1], chunk_rows=2)],
        "upload": lambda: read_delimited_bytes(data, columns=names[:1], source="upload", delimiter=delimiter),
    }
    for name, read in readers.items():
        try:
            results[name] = read()
        except DataError as error:
            assert str(error)
            results[name] = None
    for tables in (results["read_table"], results["upload"], *(results["chunks"] or [])):
        if isinstance(tables, Table):
            _no_bytes(tables)
    if results["chunks"] is not None and results["upload"] is not None:
        assert sum(len(table) for table in results["chunks"]) == len(results["upload"])


@BOUNDED
@given(delimited_files(), st.data())
def test_a_random_table_is_inferred_and_preprocessed_or_is_a_deepwright_error(
    tmp_path: Path, drawn: tuple[bytes, list[str], str], data: st.DataObject
) -> None:
    """init's inference, then the preprocessing train would fit, on whatever a random file holds."""
    raw, _, delimiter = drawn
    path = tmp_path / ("table.csv" if delimiter == "," else "table.tsv")
    path.write_bytes(raw)
    try:
        table = read_table(path)
        target = data.draw(st.sampled_from([str(column) for column in table.frame.columns]))
        config = load_config(infer_config(table, target).config)
        features = FeatureSet(config)
        columns, rows = features.columns_of(table.frame, table.base_dir)
        features.fit(columns, row_numbers=rows, source=table.source)
        inputs = features.transform_inputs(columns, row_numbers=rows, source=table.source)
    except DeepwrightError as error:
        assert str(error)
        return
    for array in inputs.values():
        if array.dtype.kind == "f":
            assert np.isfinite(array).all()


@BOUNDED
@given(
    st.binary(max_size=120) | st.lists(st.sampled_from([b"a", b",", b'"', b"\r", b"\n", b"\xff", b"1"])).map(b"".join)
)
def test_a_random_short_body_is_a_table_or_a_data_error(body: bytes) -> None:
    try:
        table = read_delimited_bytes(body, columns=[], source="upload")
    except DataError as error:
        assert "upload" in str(error)
        return
    _no_bytes(table)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_every_encoding_is_read_as_utf8_or_refused_naming_the_line(tmp_path: Path, encoding: str) -> None:
    """The encoding policy: UTF-8 (with or without a byte-order mark) is read; any other is refused, never
    guessed (a guess turns the same bytes into different labels on different machines)."""
    path = tmp_path / "t.csv"
    path.write_bytes("city,label\nNîce,1\nLyon,0\n".encode(encoding))
    if encoding.startswith("utf-8"):
        assert read_table(path).frame["city"].tolist() == ["Nîce", "Lyon"]
        return
    with pytest.raises(DataError, match="not UTF-8"):
        read_table(path)
