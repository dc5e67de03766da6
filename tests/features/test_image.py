"""The `image` feature: decoding (formats, grey/colour, sizes, padding), the statistics learned on the training
split, lazy decoding beyond the memory budget, and the encoder it builds. What images share with audio (inline
cells, bad cells, the decoded-file cache) is tested for both in tests/features/test_media.py."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from deepwright.errors import DataError
from deepwright.features.base import ValueProblem
from deepwright.features.decoding import LazyColumn
from deepwright.features.image import ImageEncoder, ImageFeature, decode_image
from deepwright.models.conv import ConvStack, ResNet
from tests.helpers import assert_restores, cells
from tests.images import digit_files, pixels, write_image
from tests.images import image_feature as feature


def fitted(values: np.ndarray, **options: Any) -> ImageFeature:
    """An image feature with `options`, fitted on `values`."""
    image = feature(**options)
    image.fit(values)
    return image


# -- decoding -----------------------------------------------------------------------------------------------


def test_grey_png_pixels_come_back_exactly(tmp_path: Path) -> None:
    array = pixels((5, 7))
    path = write_image(tmp_path / "a.png", array=array)
    image = fitted(cells(path))
    decoded = image.transform(cells(path))
    assert decoded.dtype == np.uint8
    assert decoded.shape == (1, 1, 5, 7)
    np.testing.assert_array_equal(decoded[0, 0], array)
    np.testing.assert_array_equal(decode_image(str(path), image.layout_), array[None])


@pytest.mark.parametrize("suffix", [".png", ".bmp"])
def test_lossless_colour_pixels_come_back_exactly(tmp_path: Path, suffix: str) -> None:
    array = pixels((6, 4), "RGB")
    path = write_image(tmp_path / f"a{suffix}", array=array)
    decoded = fitted(cells(path)).transform(cells(path))
    assert decoded.shape == (1, 3, 6, 4)
    np.testing.assert_array_equal(decoded[0], array.transpose(2, 0, 1))


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_jpeg_decodes_as_pillow_does(tmp_path: Path, mode: str) -> None:
    path = write_image(tmp_path / "a.jpg", (8, 8), mode)
    with Image.open(path) as opened:
        expected = np.asarray(opened.convert(mode))
    decoded = fitted(cells(path)).transform(cells(path))[0]
    np.testing.assert_array_equal(decoded, expected[None] if mode == "L" else expected.transpose(2, 0, 1))


def test_all_grey_training_images_make_one_channel(tmp_path: Path) -> None:
    paths = [write_image(tmp_path / f"{index}.png", seed=index) for index in range(3)]
    image = fitted(cells(*paths))
    assert image.state()["channels"] == 1


def test_one_colour_image_makes_three_channels_and_grey_is_repeated(tmp_path: Path) -> None:
    grey = pixels((8, 8))
    paths = [write_image(tmp_path / "grey.png", array=grey), write_image(tmp_path / "colour.png", mode="RGB")]
    image = fitted(cells(*paths))
    assert image.state()["channels"] == 3
    decoded = image.transform(cells(*paths))
    assert decoded.shape == (2, 3, 8, 8)
    for channel in decoded[0]:
        np.testing.assert_array_equal(channel, grey)


def test_grey_with_alpha_counts_as_grey_and_rgba_as_colour(tmp_path: Path) -> None:
    grey_alpha = write_image(tmp_path / "la.png", array=np.stack([pixels(), pixels(seed=1)], axis=-1))
    rgba = write_image(tmp_path / "rgba.png", array=np.concatenate([pixels(mode="RGB"), pixels()[..., None]], axis=-1))
    assert fitted(cells(grey_alpha)).state()["channels"] == 1
    assert fitted(cells(rgba)).state()["channels"] == 3
    decoded = fitted(cells(rgba)).transform(cells(rgba))
    assert decoded.shape == (1, 3, 8, 8)  # the alpha channel is dropped


def test_configured_grey_converts_colour(tmp_path: Path) -> None:
    path = write_image(tmp_path / "a.png", mode="RGB")
    decoded = fitted(cells(path), channels=1).transform(cells(path))
    with Image.open(path) as opened:
        np.testing.assert_array_equal(decoded[0, 0], np.asarray(opened.convert("L")))


def test_configured_colour_repeats_grey(tmp_path: Path) -> None:
    path = write_image(tmp_path / "a.png")
    decoded = fitted(cells(path), channels=3).transform(cells(path))
    assert decoded.shape == (1, 3, 8, 8)
    assert (decoded[0] == decoded[0, :1]).all()


def test_sixteen_bit_grey_keeps_its_contrast(tmp_path: Path) -> None:
    deep = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).astype(np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(deep).save(path)
    image = fitted(cells(path))
    assert image.state()["channels"] == 1
    decoded = image.transform(cells(path))[0, 0].astype(int)
    assert np.abs(decoded - np.round(deep / 257)).max() <= 1


def test_the_most_common_training_size_wins_and_others_are_stretched(tmp_path: Path) -> None:
    paths = [write_image(tmp_path / f"{index}.png", (6, 10), seed=index) for index in range(3)]
    odd = write_image(tmp_path / "odd.png", (12, 7), seed=9)
    image = fitted(cells(*paths, odd))
    assert image.state()["size"] == [6, 10]
    decoded = image.transform(cells(odd, paths[0]))
    assert decoded.shape == (2, 1, 6, 10)
    with Image.open(odd) as opened:
        expected = np.asarray(opened.resize((10, 6), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(decoded[0, 0], expected)


def test_a_configured_size_applies_to_every_image(tmp_path: Path) -> None:
    paths = [write_image(tmp_path / "a.png", (8, 8)), write_image(tmp_path / "b.png", (3, 5))]
    image = fitted(cells(*paths), size=[4, 6])
    assert image.state()["size"] == [4, 6]
    assert image.transform(cells(*paths)).shape == (2, 1, 4, 6)


def test_keep_aspect_ratio_fits_and_pads_with_black(tmp_path: Path) -> None:
    wide = write_image(tmp_path / "wide.png", array=np.full((4, 8), 200, dtype=np.uint8))
    decoded = fitted(cells(wide), size=[8, 8], keep_aspect_ratio=True).transform(cells(wide))[0, 0]
    np.testing.assert_array_equal(decoded[2:6], 200)  # the image, centred
    np.testing.assert_array_equal(decoded[:2], 0)
    np.testing.assert_array_equal(decoded[6:], 0)
    stretched = fitted(cells(wide), size=[8, 8]).transform(cells(wide))[0, 0]
    np.testing.assert_array_equal(stretched, 200)


def test_digits_fixture_decodes_as_8x8_grey() -> None:
    paths = digit_files()
    image = fitted(cells(*paths))
    assert image.state()["channels"] == 1
    assert image.state()["size"] == [8, 8]
    decoded = image.transform(cells(*paths))
    assert decoded.shape == (24, 1, 8, 8)
    assert decoded.max() == 255


# -- learned statistics and state ---------------------------------------------------------------------------


def test_mean_and_std_come_from_the_training_values_only(tmp_path: Path) -> None:
    train = [write_image(tmp_path / f"t{index}.png", mode="RGB", seed=index) for index in range(4)]
    other = write_image(tmp_path / "other.png", array=np.zeros((8, 8, 3), dtype=np.uint8), mode="RGB")
    image = fitted(cells(*train))
    decoded = image.transform(cells(*train)).astype(np.float64) / 255  # (4, 3, 8, 8)
    state = image.state()
    np.testing.assert_allclose(state["mean"], decoded.mean(axis=(0, 2, 3)), rtol=1e-9)
    np.testing.assert_allclose(state["std"], decoded.std(axis=(0, 2, 3)), rtol=1e-9)
    image.transform(cells(other))
    assert image.state() == state  # transforming other rows learns nothing


def test_a_constant_channel_gets_a_floor_std(tmp_path: Path) -> None:
    path = write_image(tmp_path / "flat.png", array=np.full((8, 8), 7, dtype=np.uint8))
    state = fitted(cells(path)).state()
    assert state["std"] == [1e-3]
    assert state["mean"] == pytest.approx([7 / 255])


def test_state_is_json_and_restores_the_same_preprocessing(tmp_path: Path) -> None:
    paths = [write_image(tmp_path / f"{index}.png", (6, 6), "RGB", seed=index) for index in range(3)]
    image = fitted(cells(*paths), keep_aspect_ratio=True)
    state = json.loads(json.dumps(image.state(), allow_nan=False))
    assert set(state) == {"channels", "size", "keep_aspect_ratio", "mean", "std"}
    assert_restores(image, feature(keep_aspect_ratio=True), state, cells(*paths))


# -- bad cells ----------------------------------------------------------------------------------------------


def test_a_truncated_file_is_named_by_position(tmp_path: Path) -> None:
    """The header is intact, so only decoding the pixels finds the problem."""
    path = write_image(tmp_path / "a.png", (16, 16))
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(ValueProblem, match="is not a readable image") as raised:
        feature().fit(cells(path, truncated))
    assert raised.value.position == 1


# -- lazy decoding and the cache ----------------------------------------------------------------------------


def test_lazy_images_pickle_for_worker_processes() -> None:
    paths = cells(*digit_files()[:4])
    lazy = fitted(paths, cache_memory_mb=0).transform(paths)
    copy = pickle.loads(pickle.dumps(lazy))
    assert torch.equal(copy[[0, 1, 2, 3]], lazy[[0, 1, 2, 3]])


def test_lazy_images_name_the_position_of_an_unreadable_file(tmp_path: Path) -> None:
    good = write_image(tmp_path / "a.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    lazy = fitted(cells(good), cache_memory_mb=0).transform(cells(good, good, bad))
    lazy.locate(np.array([11, 12, 13]), "table.csv", "image")
    assert lazy[[0, 1]].shape == (2, 1, 8, 8)
    with pytest.raises(DataError, match="not a readable image") as raised:
        lazy[[0, 2]]
    assert (raised.value.row, raised.value.column, raised.value.source) == (13, "image", "table.csv")


def test_the_memory_budget_boundary(tmp_path: Path) -> None:
    """512 × 512 grey images are 0.25 MiB each: four fit in 1 MiB, five do not."""
    paths = [write_image(tmp_path / f"{index}.png", seed=index) for index in range(5)]
    image = fitted(cells(*paths[:1]), size=[512, 512], cache_memory_mb=1)
    assert isinstance(image.transform(cells(*paths[:4])), np.ndarray)
    assert isinstance(image.transform(cells(*paths)), LazyColumn)


# -- encoder ------------------------------------------------------------------------------------------------


class Recorder(nn.Module):
    """A backbone that returns its input flattened, to see what the encoder feeds it."""

    output_size = 3 * 4 * 4

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.flatten(1)


def test_the_encoder_scales_and_normalises_with_the_training_statistics() -> None:
    from deepwright.config import ImageAugmentationConfig
    from deepwright.models.augment import ImageAugmentation

    mean, std = [0.1, 0.5, 0.9], [0.2, 0.25, 0.5]
    encoder = ImageEncoder(Recorder(), ImageAugmentation(ImageAugmentationConfig()), mean, std).eval()
    images = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    expected = (images.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    torch.testing.assert_close(encoder(images), expected.flatten(1))
    assert encoder.output_size == 48


def test_the_encoder_augments_in_training_only() -> None:
    """With a flip of probability 1, the training-mode encoder sees the mirrored images; in evaluation mode it
    sees them as they are (batch norm kept in evaluation mode so that only the augmentation differs)."""
    paths = cells(*digit_files()[:8])
    image = fitted(paths, augmentation={"horizontal_flip": {"probability": 1.0}})
    encoder = image.build_encoder().eval()
    batch = torch.from_numpy(image.transform(paths))
    plain, mirrored = encoder(batch), encoder(batch.flip(-1))
    assert not torch.allclose(plain, mirrored)
    encoder.augmentation.train()
    torch.testing.assert_close(encoder(batch), mirrored, rtol=0, atol=1e-5)


def test_the_encoder_builds_the_configured_backbone() -> None:
    paths = cells(*digit_files()[:4])
    stack = fitted(paths, encoder={"dims": [4, 6], "kernel_sizes": [5, 3], "norm": None, "activation": "tanh"})
    backbone = stack.build_encoder().backbone
    assert isinstance(backbone, ConvStack)
    assert backbone.layers[0].kernel_size == (5, 5)
    assert stack.width() == 6
    resnet = fitted(paths, encoder={"type": "resnet", "dim": 4, "blocks": [1, 1]})
    assert isinstance(resnet.build_encoder().backbone, ResNet)
    assert resnet.width() == 8
    for image in (stack, resnet):
        out = image.build_encoder()(torch.from_numpy(image.transform(paths)))
        assert out.shape == (4, image.width())


def test_colour_encoder_takes_three_channels(tmp_path: Path) -> None:
    paths = [write_image(tmp_path / f"{index}.png", mode="RGB", seed=index) for index in range(2)]
    image = fitted(cells(*paths))
    encoder = image.build_encoder()
    assert encoder.backbone.layers[0].in_channels == 3
    assert encoder.mean.shape == (1, 3, 1, 1)
    assert encoder(torch.from_numpy(image.transform(cells(*paths)))).shape == (2, 8)
