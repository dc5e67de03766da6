"""Media cells (paths, raw bytes, base64, data URLs) and folder-per-class datasets read as tables."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
import pytest

from deepwright.data.io import read_class_folders, read_table
from deepwright.data.media import MediaError, describe_cell, is_inline, open_cell, resolve_paths
from deepwright.errors import DataError
from tests.images import DIGIT_LABELS, DIGITS, copy_digits, write_image

PAYLOAD = b"\x89PNG\r\n\x1a\n some bytes"
TEXT = base64.b64encode(PAYLOAD).decode()


@pytest.mark.parametrize(
    ("cell", "inline"),
    [
        (PAYLOAD, True),
        (bytearray(PAYLOAD), True),
        ({"base64": TEXT}, True),
        (f"data:image/png;base64,{TEXT}", True),
        ("images/cat.png", False),
        ("/abs/cat.png", False),
        ("database.png", False),  # starts with 'data' but is not a data URL
    ],
)
def test_is_inline(cell: object, inline: bool) -> None:
    assert is_inline(cell) is inline


def test_resolve_paths_against_the_data_folder(tmp_path: Path) -> None:
    absolute = str(tmp_path / "elsewhere" / "b.png")
    cells = np.array(
        ["images/a.png", absolute, " spaced.png ", None, "", {"base64": TEXT}, PAYLOAD, np.nan], dtype=object
    )
    resolved = resolve_paths(cells, tmp_path)
    assert resolved[0] == str(tmp_path / "images" / "a.png")
    assert resolved[1] == absolute
    assert resolved[2] == str(tmp_path / "spaced.png")
    assert resolved[3] is None
    assert resolved[4] == ""
    assert resolved[5] == {"base64": TEXT}
    assert resolved[6] == PAYLOAD
    assert np.isnan(resolved[7])
    assert resolve_paths(cells, None) is cells


@pytest.mark.parametrize(
    "cell",
    [PAYLOAD, bytearray(PAYLOAD), {"base64": TEXT}, f"data:image/png;base64,{TEXT}", f"data:;base64,{TEXT}"],
    ids=["bytes", "bytearray", "mapping", "data-url", "data-url-without-type"],
)
def test_open_inline_cells(cell: object) -> None:
    stream = open_cell(cell)
    assert isinstance(stream, io.BytesIO)
    assert stream.read() == PAYLOAD


def test_open_a_path_cell(tmp_path: Path) -> None:
    path = write_image(tmp_path / "a.png")
    assert open_cell(str(path)) == str(path)


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ({"base64": "not base64!"}, "not valid base64"),
        ({"b64": TEXT}, '{"base64": "<base64 text>"}'),
        ({"base64": TEXT, "name": "x.png"}, '{"base64": "<base64 text>"}'),
        ({"base64": 12}, '{"base64": "<base64 text>"}'),
        ("data:image/png,rawtext", "must be base64-encoded"),
        ("data:image/png;base64,***", "not valid base64"),
    ],
)
def test_bad_inline_cells(cell: object, message: str) -> None:
    with pytest.raises(MediaError, match=re.escape(message)):
        open_cell(cell)


def test_a_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.png"
    with pytest.raises(MediaError, match="does not exist") as raised:
        open_cell(str(missing))
    assert repr(str(missing)) in str(raised.value)
    with pytest.raises(MediaError, match="does not exist"):
        open_cell(str(tmp_path))  # a folder is not a file


def test_media_error_is_a_value_error() -> None:
    assert issubclass(MediaError, ValueError)


def test_describe_cell() -> None:
    assert describe_cell("a/b.png") == "'a/b.png'"
    assert describe_cell({"base64": TEXT}) == "the base64 payload"
    assert describe_cell(f"data:image/png;base64,{TEXT}") == "the base64 payload"


# -- folders of class folders -------------------------------------------------------------------------------


def test_read_class_folders() -> None:
    frame = read_class_folders(DIGITS)
    assert frame.columns.tolist() == ["image", "label"]
    assert len(frame) == 24
    assert sorted(frame["label"].unique()) == DIGIT_LABELS
    assert frame["label"].value_counts().tolist() == [8, 8, 8]
    assert all(path.count("/") == 1 and not path.startswith("/") for path in frame["image"])  # relative, POSIX
    for path, label in zip(frame["image"], frame["label"]):
        assert path.split("/")[0] == label
        assert (DIGITS / path).is_file()


def test_read_table_of_a_class_folder_tree_resolves_against_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy_digits(tmp_path / "digits")
    monkeypatch.chdir(tmp_path)
    table = read_table("digits")
    assert table.source == "digits"
    assert table.base_dir == (tmp_path / "digits").resolve()
    assert table.frame.columns.tolist() == ["image", "label"]
    assert (table.base_dir / table.frame["image"].iloc[0]).is_file()


def test_class_folders_skip_hidden_folders_and_other_files_and_search_subfolders(tmp_path: Path) -> None:
    write_image(tmp_path / "cat" / "a.png")
    write_image(tmp_path / "cat" / "nested" / "b.JPG", mode="RGB")
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    (tmp_path / "cat" / ".DS_Store").write_bytes(b"\0")
    write_image(tmp_path / "dog" / "c.bmp")
    write_image(tmp_path / ".thumbnails" / "d.png")
    (tmp_path / "README.md").write_text("a file beside the class folders")
    frame = read_class_folders(tmp_path)
    assert frame.to_dict("list") == {
        "image": ["cat/a.png", "cat/nested/b.JPG", "dog/c.bmp"],
        "label": ["cat", "cat", "dog"],
    }


def test_an_empty_class_folder_is_named(tmp_path: Path) -> None:
    write_image(tmp_path / "cat" / "a.png")
    (tmp_path / "dog").mkdir()
    (tmp_path / "dog" / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match="class folder 'dog' holds no image or audio files") as raised:
        read_class_folders(tmp_path)
    assert str(tmp_path) in str(raised.value)


def test_a_folder_without_class_folders(tmp_path: Path) -> None:
    write_image(tmp_path / "a.png")
    with pytest.raises(DataError, match="without class folders"):
        read_class_folders(tmp_path)


def test_images_and_audio_in_one_tree(tmp_path: Path) -> None:
    write_image(tmp_path / "cat" / "a.png")
    (tmp_path / "dog").mkdir()
    (tmp_path / "dog" / "bark.wav").write_bytes(b"RIFF")
    with pytest.raises(DataError, match="both image and audio"):
        read_class_folders(tmp_path)
