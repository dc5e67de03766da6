"""What the `image` and `audio` features share, run once for each medium: inline cells, bad cells named by
position, methods before fit, lazy decoding beyond the memory budget, and the decoded-file cache (written once,
keyed by files and layout, never for inline cells). What only one medium does stays in
tests/features/test_image.py and test_audio.py."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from deepwright.errors import NotFittedError
from deepwright.features.base import ValueProblem
from deepwright.features.decoding import LazyColumn
from tests.audio import audio_feature, encode_sound, fsdd_files, tone, tones, write_sound
from tests.helpers import cells
from tests.images import digit_files, image_feature, write_image


@dataclass(frozen=True)
class Medium:
    """One medium's feature, files and words, as the shared tests need them."""

    name: str  # the feature type, as messages name it ("image cell is empty")
    suffix: str  # of the files written here
    mime: str  # of a data URL holding one
    make: Callable[..., Any]  # the feature, given options
    write: Callable[..., Path]  # (path, colour=False) → a small file; `colour` is for images only
    several: Callable[[Path], list[Path]]  # three different files in a folder
    rewrite: Callable[[Path], Path]  # new content over one of them
    fixture_files: Callable[[], list[Path]]
    unreadable: str  # what the error says of a file it cannot decode
    unfitted: tuple[str, ...]  # the methods that need fit first
    dtype: torch.dtype  # of decoded batches
    row_shape: tuple[int, ...]  # of one decoded default file
    cache_prefix: str  # of both cache files
    cache_suffix: str  # of the decoded-data cache file
    relayout: dict[str, Any]  # options that change how three default files decode…
    relayout_shape: tuple[int, ...]  # …into this shape

    def fitted(self, values: np.ndarray, **options: Any) -> Any:
        """The feature with `options`, fitted on `values`."""
        feature = self.make(**options)
        feature.fit(values)
        return feature


def write_picture(path: Path, colour: bool = False) -> Path:
    """Random 8×8 pixels, grey or colour."""
    return write_image(path, mode="RGB" if colour else "L")


def pictures(folder: Path) -> list[Path]:
    """Three grey 8×8 images of different pixels."""
    return [write_image(folder / f"{index}.png", seed=index) for index in range(3)]


def write_tone(path: Path, colour: bool = False) -> Path:
    """Half a second of 440 Hz."""
    return write_sound(path, tone())


IMAGE = Medium(
    name="image",
    suffix=".png",
    mime="image/png",
    make=image_feature,
    write=write_picture,
    several=pictures,
    rewrite=lambda path: write_image(path, seed=99),  # new content (and size on disk, and modification time)
    fixture_files=digit_files,
    unreadable="is not a readable image",
    unfitted=("state", "build_encoder", "width"),
    dtype=torch.uint8,
    row_shape=(1, 8, 8),
    cache_prefix="images-",
    cache_suffix=".u8",
    relayout={"size": [4, 4]},
    relayout_shape=(3, 1, 4, 4),
)
AUDIO = Medium(
    name="audio",
    suffix=".wav",
    mime="audio/wav",
    make=audio_feature,
    write=write_tone,
    several=tones,
    rewrite=lambda path: write_sound(path, tone(2000, 0.5)),  # new content (and modification time)
    fixture_files=fsdd_files,
    unreadable="is not a readable audio file",
    unfitted=("state", "build_encoder", "width", "request_hints"),
    dtype=torch.float16,
    row_shape=(4000,),
    cache_prefix="audio-",
    cache_suffix=".f16",
    relayout={"sample_rate": 4000},
    relayout_shape=(3, 2000),
)


@pytest.fixture(params=[IMAGE, AUDIO], ids=["image", "audio"])
def medium(request: pytest.FixtureRequest) -> Medium:
    return request.param


# -- inline cells and bad cells -----------------------------------------------------------------------------


def test_inline_cells_decode_like_the_file(tmp_path: Path, medium: Medium) -> None:
    path = medium.write(tmp_path / f"a{medium.suffix}", colour=True)
    data = path.read_bytes()
    text = base64.b64encode(data).decode()
    feature = medium.fitted(cells(path))
    decoded = feature.transform(cells(path, data, {"base64": text}, f"data:{medium.mime};base64,{text}"))
    for row in decoded:
        np.testing.assert_array_equal(row, decoded[0])


def test_methods_before_fit_say_to_fit(medium: Medium) -> None:
    feature = medium.make()
    for name in medium.unfitted:
        with pytest.raises(NotFittedError):
            getattr(feature, name)()
    with pytest.raises(NotFittedError):
        feature.transform(cells(f"a{medium.suffix}"))


@pytest.mark.parametrize("empty", [None, "", np.nan])
def test_an_empty_cell_is_named_by_position(tmp_path: Path, medium: Medium, empty: Any) -> None:
    path = medium.write(tmp_path / f"a{medium.suffix}")
    with pytest.raises(ValueProblem, match=f"{medium.name} cell is empty") as raised:
        medium.make().fit(cells(path, path, empty))
    assert raised.value.position == 2


def test_a_missing_file_is_named_by_position_and_path(tmp_path: Path, medium: Medium) -> None:
    path = medium.write(tmp_path / f"a{medium.suffix}")
    missing = tmp_path / f"missing{medium.suffix}"
    with pytest.raises(ValueProblem, match="does not exist") as raised:
        medium.make().fit(cells(path, missing))
    assert raised.value.position == 1
    assert str(missing) in raised.value.message


@pytest.mark.parametrize(
    ("medium", "content"),
    [
        pytest.param(IMAGE, b"\x89PNG\r\n\x1a\n" + b"\0" * 40, id="image-corrupt-png"),
        pytest.param(IMAGE, b"plain text, not an image\n", id="image-text"),
        pytest.param(IMAGE, b"", id="image-empty-file"),
        pytest.param(AUDIO, b"plain text, not a sound\n", id="audio-text"),
        pytest.param(AUDIO, b"RIFF\x10\x00\x00\x00WAVEfmt garbage", id="audio-corrupt-wav"),
    ],
)
def test_an_unreadable_file_is_named_by_position(tmp_path: Path, medium: Medium, content: bytes) -> None:
    path = medium.write(tmp_path / f"a{medium.suffix}")
    bad = tmp_path / f"bad{medium.suffix}"
    bad.write_bytes(content)
    with pytest.raises(ValueProblem, match=medium.unreadable) as raised:
        medium.make().fit(cells(path, path, bad))
    assert raised.value.position == 2
    assert str(bad) in raised.value.message
    feature = medium.fitted(cells(path))
    with pytest.raises(ValueProblem, match=medium.unreadable) as raised:
        feature.transform(cells(bad, path))
    assert raised.value.position == 0


@pytest.mark.parametrize(
    ("medium", "payload"),
    [
        pytest.param(IMAGE, {"base64": base64.b64encode(b"hello").decode()}, id="image-base64-text"),
        pytest.param(IMAGE, "data:image/png;base64,aGVsbG8=", id="image-data-url"),
        pytest.param(IMAGE, b"hello", id="image-raw-bytes"),
        pytest.param(IMAGE, {"base64": "**"}, id="image-not-base64"),
        pytest.param(AUDIO, {"base64": base64.b64encode(b"hello").decode()}, id="audio-base64-text"),
        pytest.param(AUDIO, "data:audio/wav;base64,aGVsbG8=", id="audio-data-url"),
        pytest.param(AUDIO, b"hello", id="audio-raw-bytes"),
        pytest.param(
            AUDIO,
            {"base64": base64.b64encode(encode_sound(np.zeros(0, dtype=np.float32))).decode()},
            id="audio-base64-empty-clip",
        ),
        pytest.param(AUDIO, {"base64": "**"}, id="audio-not-base64"),
    ],
)
def test_an_inline_payload_that_is_not_the_medium(tmp_path: Path, medium: Medium, payload: Any) -> None:
    path = medium.write(tmp_path / f"a{medium.suffix}")
    feature = medium.fitted(cells(path))
    with pytest.raises(ValueProblem, match=rf"{medium.unreadable}|not valid base64|no samples") as raised:
        feature.transform(cells(path, payload))
    assert raised.value.position == 1


# -- lazy decoding and the cache ----------------------------------------------------------------------------


def test_beyond_the_memory_budget_files_are_decoded_on_access(medium: Medium) -> None:
    paths = cells(*medium.fixture_files())
    eager = medium.fitted(paths).transform(paths)
    lazy_feature = medium.fitted(paths, cache_memory_mb=0)
    lazy = lazy_feature.transform(paths)
    assert isinstance(lazy, LazyColumn)
    assert len(lazy) == len(paths)
    assert lazy_feature.state() == medium.fitted(paths).state()  # the statistics do not depend on the path taken
    cases = (
        ([3, 0, 11], [3, 0, 11]),
        (slice(2, 9), list(range(2, 9))),
        (torch.tensor([5, 1]), [5, 1]),
        (torch.tensor([5, 1, 11]), [5, 1, 11]),
    )
    for index, rows in cases:
        batch = lazy[index]
        assert isinstance(batch, torch.Tensor)
        assert batch.dtype == medium.dtype
        np.testing.assert_array_equal(batch.numpy(), eager[rows])


def test_the_cache_file_is_written_once_and_reused(
    tmp_path: Path, request: pytest.FixtureRequest, medium: Medium
) -> None:
    paths = cells(*medium.fixture_files())
    feature = medium.make()
    feature.cache_dir = tmp_path / "cache"
    feature.fit(paths)
    first = feature.transform(paths)
    files = sorted(path.name for path in (tmp_path / "cache").iterdir())
    assert len(files) == 2
    assert all(name.startswith(medium.cache_prefix) for name in files)
    assert sorted(Path(name).suffix for name in files) == sorted([".json", medium.cache_suffix])
    assert isinstance(first, np.memmap)
    np.testing.assert_array_equal(first, medium.fitted(paths).transform(paths))

    request.getfixturevalue("no_decoding")
    again = medium.make()
    again.cache_dir = tmp_path / "cache"
    again.load_state(feature.state())
    np.testing.assert_array_equal(again.transform(paths), first)
    assert sorted(path.name for path in (tmp_path / "cache").iterdir()) == files


def test_the_cache_key_follows_the_files_and_the_layout(tmp_path: Path, medium: Medium) -> None:
    paths = medium.several(tmp_path / "files")
    feature = medium.make()
    feature.cache_dir = tmp_path / "cache"
    feature.fit(cells(*paths))
    before = feature.transform(cells(*paths)).copy()
    medium.rewrite(paths[1])
    after = feature.transform(cells(*paths))
    assert not np.array_equal(before[1], after[1])
    np.testing.assert_array_equal(before[0], after[0])
    relaid = medium.make(**medium.relayout)
    relaid.cache_dir = tmp_path / "cache"
    relaid.fit(cells(*paths))
    assert relaid.transform(cells(*paths)).shape == medium.relayout_shape
    assert len(list((tmp_path / "cache").glob(f"*{medium.cache_suffix}"))) == 3
    assert not list((tmp_path / "cache").glob("*.partial"))


def test_inline_cells_are_not_cached(tmp_path: Path, medium: Medium) -> None:
    path = medium.write(tmp_path / f"a{medium.suffix}")
    feature = medium.make()
    feature.cache_dir = tmp_path / "cache"
    feature.fit(cells(path))  # decodes the training file into the cache
    before = sorted((tmp_path / "cache").iterdir())
    decoded = feature.transform(cells(path, path.read_bytes()))
    assert decoded.shape == (2, *medium.row_shape)
    assert isinstance(decoded, np.ndarray) and not isinstance(decoded, np.memmap)
    assert sorted((tmp_path / "cache").iterdir()) == before
