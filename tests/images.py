"""Helpers for the image tests: the small digits fixture, images written with Pillow, and a tiny image config.

The only image files in the repository are the 24 8×8 digits of `tests/fixtures/digits/` (see
tests/fixtures/README.md); every other image is generated here, in the test's temporary folder.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from deepwright.config import ImageFeatureConfig
from deepwright.data.io import read_class_folders
from deepwright.features.image import ImageFeature
from tests.helpers import write_config

DIGITS = Path(__file__).parent / "fixtures" / "digits"  # zero/, one/, seven/: 8 grey 8×8 PNGs each
DIGIT_LABELS = ["one", "seven", "zero"]  # sorted, as the category feature orders them
# Four training rows, two validation rows and two test rows per class, in file order (rows 1-4 train, 5-6
# validation, 7-8 test for the first class…), so a test can put a bad file in the split it means.
SPLITS = (["train"] * 4 + ["validation"] * 2 + ["test"] * 2) * 3


def image_feature(**options: Any) -> ImageFeature:
    """An input image feature named 'image' with a [4, 8] ConvStack and the given options."""
    settings = {"name": "image", "type": "image", "encoder": {"dims": [4, 8]}, **options}
    return ImageFeature(ImageFeatureConfig.model_validate(settings), "input")


def copy_digits(folder: Path) -> Path:
    """A copy of the digits fixture at `folder` (for tests that add or spoil files); returns `folder`."""
    shutil.copytree(DIGITS, folder)
    return folder


def digit_listing() -> pd.DataFrame:
    """The digits as a table: `image` (a path under images/), `label` and `split` (`SPLITS`)."""
    frame = read_class_folders(DIGITS)
    frame["image"] = "images/" + frame["image"]
    frame["split"] = SPLITS
    return frame


def image_project(folder: Path) -> Path:
    """`folder` with `images/` (the digits), `data.csv` listing them with a split column, and a one-epoch
    config.yaml; returns `folder`."""
    copy_digits(folder / "images")
    digit_listing().to_csv(folder / "data.csv", index=False)
    write_config(folder, image_config(epochs=1, split={"method": "column", "column": "split"}))
    return folder


def spoil_image(project: Path, row: int, cell: str) -> None:
    """Set the image cell of data row `row` (1-based, as messages count) of the project's data.csv."""
    frame = digit_listing()
    frame.loc[row - 1, "image"] = cell
    frame.to_csv(project / "data.csv", index=False)


def digit_files() -> list[Path]:
    """Every fixture image, sorted by class folder then name."""
    return sorted(DIGITS.rglob("*.png"))


def pixels(size: tuple[int, int] = (8, 8), mode: str = "L", seed: int = 0) -> np.ndarray:
    """Random uint8 pixels (height, width) for grey or (height, width, 3) for RGB; `size` is (height, width)."""
    rng = np.random.default_rng(seed)
    shape = size if mode == "L" else (*size, 3)
    return rng.integers(0, 256, shape, dtype=np.uint8)


def write_image(
    path: Path, size: tuple[int, int] = (8, 8), mode: str = "L", seed: int = 0, array: np.ndarray | None = None
) -> Path:
    """Write random pixels of `size` and `mode` (or the given array, its mode inferred) to `path` in the format
    its suffix names; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(pixels(size, mode, seed), mode) if array is None else Image.fromarray(array)
    image.save(path)
    return path


def encode(array: np.ndarray, image_format: str = "PNG") -> bytes:
    """Pixels as the bytes of an image file."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=image_format)
    return buffer.getvalue()


def image_config(
    *,
    image: dict[str, Any] | None = None,
    inputs: list[dict[str, Any]] = (),
    output: dict[str, Any] | None = None,
    split: dict[str, Any] | None = None,
    **trainer: Any,
) -> dict[str, Any]:
    """A config for an `image` column (plus `inputs`) predicting `label`: a 2-layer [4, 8] ConvStack, a 16-unit
    combiner, 3 epochs of batch 8, no checkpoints; `image` and `trainer` override options."""
    return {
        "input_features": [
            {"name": "image", "type": "image", "encoder": {"dims": [4, 8]}, **(image or {})},
            *inputs,
        ],
        "output_features": [output or {"name": "label", "type": "category"}],
        "combiner": {"type": "concat", "dims": [16]},
        "preprocessing": {
            "split": split or {"method": "stratified", "fractions": [0.5, 0.25, 0.25], "seed": 0},
        },
        "trainer": {
            "epochs": 3,
            "batch_size": 8,
            "optimizer": {"type": "adam", "lr": 0.02},
            "checkpoint": False,
            **trainer,
        },
    }
