"""The `image` feature type: image files by path (or base64 in requests) → a convolutional encoder.

Preprocessing, learned on the training split: the size every image is resized to (the most common training
size unless configured; stretched, or fitted and padded with `keep_aspect_ratio`), the channel count (grey
when every training image is grey, else RGB: grey images are then repeated to RGB, colour ones converted to
grey when `channels: 1`), and per-channel mean and standard deviation.

Each file is decoded once. When the decoded set fits `cache_memory_mb` it is kept as a uint8 array, in a
memory-mapped cache file when the run gives a cache folder (reused by later runs on the same files); beyond
that budget, images are decoded for every batch in DataLoader worker processes. The encoder turns uint8
images into floats, augments them (training only), normalises them and runs the ConvStack or ResNet.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from deepwright.config import ImageFeatureConfig
from deepwright.data.clean import missing_mask
from deepwright.data.media import MediaError, describe_cell, is_inline, open_cell
from deepwright.errors import DataError
from deepwright.features.base import Role, ValueProblem, check_is_fitted
from deepwright.models.augment import ImageAugmentation
from deepwright.models.conv import ConvStack, ResNet
from deepwright.registry import FEATURES

__all__ = ["ImageEncoder", "ImageFeature", "ImageLayout", "LazyImages", "decode_image"]

_GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"})
_WIDE_GREY_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "F"})  # more than 8 bits a pixel
_STATISTICS_SAMPLE = 2000  # images used for mean/std when they are decoded per batch


@dataclass(frozen=True)
class ImageLayout:
    """What every decoded image is made into: (channels, height, width), stretched or padded."""

    channels: int
    height: int
    width: int
    keep_aspect_ratio: bool

    @property
    def bytes_per_image(self) -> int:
        return self.channels * self.height * self.width


def decode_image(cell: Any, layout: ImageLayout) -> np.ndarray:
    """One image cell → a uint8 array (channels, height, width); `MediaError` when it cannot be read."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    source = open_cell(cell)
    try:
        with Image.open(source) as image:
            if image.mode in _WIDE_GREY_MODES:
                image = _to_eight_bits(image)
            image = image.convert("L" if layout.channels == 1 else "RGB")
            size = (layout.width, layout.height)
            if image.size != size:
                if layout.keep_aspect_ratio:
                    image = ImageOps.pad(image, size, method=Image.Resampling.BILINEAR, color=0)
                else:
                    image = image.resize(size, Image.Resampling.BILINEAR)
            array = np.asarray(image, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise MediaError(f"{describe_cell(cell)} is not a readable image ({type(error).__name__})") from None
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def _to_eight_bits(image: Any) -> Any:
    """A 16-bit (or 32-bit, or float) grey image scaled into 8 bits, rather than clipped at 255."""
    from PIL import Image

    pixels = np.asarray(image, dtype=np.float64)
    if pixels.max(initial=0) > 255:
        pixels = pixels / 257.0  # 16-bit range → 8-bit range
    return Image.fromarray(pixels.clip(0, 255).round().astype(np.uint8), "L")


def _probe(cell: Any) -> tuple[int, int, bool]:
    """(height, width, is_grey) from an image's header, without decoding its pixels."""
    from PIL import Image, UnidentifiedImageError

    source = open_cell(cell)
    try:
        with Image.open(source) as image:
            return image.height, image.width, image.mode in _GREY_MODES
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise MediaError(f"{describe_cell(cell)} is not a readable image ({type(error).__name__})") from None


def _decode_into(cells: np.ndarray, layout: ImageLayout, out: np.ndarray) -> None:
    """Decode every cell into `out[i]`, in threads (Pillow decodes without holding the GIL)."""

    def decode(position: int) -> None:
        try:
            out[position] = decode_image(cells[position], layout)
        except MediaError as error:
            raise ValueProblem(position, str(error)) from None

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for _ in pool.map(decode, range(len(cells)), chunksize=64):
            pass


class LazyImages:
    """Image cells decoded on access: `images[indices]` → a uint8 tensor (N, C, H, W). Used when the decoded
    set would not fit the memory budget; the trainer then decodes batches in worker processes."""

    def __init__(self, cells: np.ndarray, layout: ImageLayout) -> None:
        self.cells = cells
        self.layout = layout
        self.row_numbers: np.ndarray | None = None
        self.column: str | None = None
        self.source: str | None = None

    def locate(self, row_numbers: np.ndarray, source: str, column: str) -> None:
        """Where the cells came from, so that a file failing to decode later is named with its row."""
        self.row_numbers, self.source, self.column = row_numbers, source, column

    def __len__(self) -> int:
        return len(self.cells)

    def __getitem__(self, index: Any) -> torch.Tensor:
        positions = np.arange(len(self.cells))[index.cpu().numpy() if isinstance(index, torch.Tensor) else index]
        positions = np.atleast_1d(positions)
        out = np.empty((len(positions), self.layout.channels, self.layout.height, self.layout.width), dtype=np.uint8)
        for row, position in enumerate(positions):
            try:
                out[row] = decode_image(self.cells[position], self.layout)
            except MediaError as error:
                number = None if self.row_numbers is None else int(self.row_numbers[position])
                raise DataError(str(error), column=self.column, row=number, source=self.source) from None
        return torch.from_numpy(out)


class ImageEncoder(nn.Module):
    """uint8 images (B, C, H, W) → floats in [0, 1] → augmentation (training only) → per-channel
    normalisation with the training statistics → ConvStack or ResNet → (B, output_size)."""

    def __init__(self, backbone: nn.Module, augmentation: nn.Module, mean: list[float], std: list[float]) -> None:
        super().__init__()
        self.augmentation = augmentation
        self.backbone = backbone
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        self.output_size = backbone.output_size

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        pixels = self.augmentation(images.float() / 255.0)  # (B, C, H, W)
        return self.backbone((pixels - self.mean) / self.std)


@FEATURES.register("image")
class ImageFeature:
    """A column of images (see the module docstring)."""

    passthrough = False
    reads_files = True

    def __init__(self, options: ImageFeatureConfig, role: Role) -> None:
        self.name = options.name
        self.options = options
        self.role = role
        self.cache_dir: Path | None = None  # set by the caller to keep decoded images between runs
        self.layout_: ImageLayout | None = None
        self.mean_: list[float] | None = None
        self.std_: list[float] | None = None

    def fit(self, values: np.ndarray) -> None:
        cells = self._present(values)
        probes = []
        for position, cell in enumerate(cells):
            try:
                probes.append(_probe(cell))
            except MediaError as error:
                raise ValueProblem(position, str(error)) from None
        height, width = self.options.size or Counter((h, w) for h, w, _ in probes).most_common(1)[0][0]
        channels = self.options.channels or (1 if all(grey for _, _, grey in probes) else 3)
        self.layout_ = ImageLayout(channels, height, width, self.options.keep_aspect_ratio)
        images = self._decoded(cells)
        sample = images if isinstance(images, np.ndarray) else images[: min(len(images), _STATISTICS_SAMPLE)].numpy()
        pixels = sample.transpose(1, 0, 2, 3).reshape(channels, -1)
        self.mean_ = (pixels.mean(axis=1, dtype=np.float64) / 255).tolist()
        self.std_ = [max(value, 1e-3) for value in (pixels.std(axis=1, dtype=np.float64) / 255).tolist()]

    def transform(self, values: np.ndarray) -> np.ndarray | LazyImages:
        check_is_fitted(self, "layout_")
        return self._decoded(self._present(values))

    def state(self) -> dict[str, Any]:
        check_is_fitted(self, "layout_")
        layout = self.layout_
        return {
            "channels": layout.channels,
            "size": [layout.height, layout.width],
            "keep_aspect_ratio": layout.keep_aspect_ratio,
            "mean": self.mean_,
            "std": self.std_,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        height, width = state["size"]
        self.layout_ = ImageLayout(state["channels"], height, width, state["keep_aspect_ratio"])
        self.mean_, self.std_ = state["mean"], state["std"]

    def width(self) -> int:
        return self._backbone().output_size

    def build_encoder(self) -> nn.Module:
        check_is_fitted(self, "layout_")
        return ImageEncoder(self._backbone(), ImageAugmentation(self.options.augmentation), self.mean_, self.std_)

    # -- helpers -----------------------------------------------------------------------------------------

    def _backbone(self) -> nn.Module:
        check_is_fitted(self, "layout_")
        encoder = self.options.encoder
        if encoder.type == "resnet":
            return ResNet(self.layout_.channels, width=encoder.width, blocks=encoder.blocks, norm=encoder.norm)
        return ConvStack(
            self.layout_.channels,
            channels=encoder.channels,
            kernel_sizes=encoder.kernel_sizes,
            strides=encoder.strides,
            paddings=encoder.paddings,
            pools=encoder.pools,
            activation=encoder.activation,
            norm=encoder.norm,
            dropout=encoder.dropout,
        )

    def _present(self, values: np.ndarray) -> np.ndarray:
        """The cells, once checked that none is empty (an image cannot be filled in) and that every path
        names a file, before anything is decoded or cached."""
        missing = missing_mask(values)
        if missing.any():
            raise ValueProblem(int(np.flatnonzero(missing)[0]), "the image cell is empty; give a file path")
        for position, cell in enumerate(values):
            if not is_inline(cell):
                try:
                    open_cell(cell)
                except MediaError as error:
                    raise ValueProblem(position, str(error)) from None
        return values

    def _decoded(self, cells: np.ndarray) -> np.ndarray | LazyImages:
        layout = self.layout_
        shape = (len(cells), layout.channels, layout.height, layout.width)
        if len(cells) * layout.bytes_per_image > self.options.cache_memory_mb * 2**20:
            return LazyImages(cells, layout)
        if self.cache_dir is None or any(is_inline(cell) for cell in cells):
            images = np.empty(shape, dtype=np.uint8)
            _decode_into(cells, layout, images)
            return images
        return _cached(cells, layout, self.cache_dir)


def _cached(cells: np.ndarray, layout: ImageLayout, cache_dir: Path) -> np.ndarray:
    """The decoded images from the memory-mapped cache file for exactly these files (decoding them first on a
    miss). The key covers each file's path, size and modification time, and the layout."""
    digest = hashlib.sha256(json.dumps(layout.__dict__, sort_keys=True).encode())
    for cell in cells:
        status = os.stat(cell)
        digest.update(f"{cell}\0{status.st_size}\0{status.st_mtime_ns}\n".encode())
    key = digest.hexdigest()[:32]
    data, marker = cache_dir / f"images-{key}.u8", cache_dir / f"images-{key}.json"
    shape = (len(cells), layout.channels, layout.height, layout.width)
    if not marker.is_file():
        cache_dir.mkdir(parents=True, exist_ok=True)
        temporary = data.with_suffix(".partial")
        images = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.uint8, shape=shape)
        try:
            _decode_into(cells, layout, images)
            images.flush()
            del images
            os.replace(temporary, data)
        finally:
            temporary.unlink(missing_ok=True)
        marker.write_text(json.dumps({"shape": list(shape), "files": len(cells)}), encoding="utf-8")
    return np.load(data, mmap_mode="c")
