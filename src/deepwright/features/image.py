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

from collections import Counter
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import nn

from deepwright.config import ImageFeatureConfig
from deepwright.data.media import MediaError, describe_cell, open_cell
from deepwright.features.base import Role, check_is_fitted
from deepwright.features.decoding import Decoding, LazyColumn, MediaFeature, check_cells, decode_column, probe_cells
from deepwright.models.augment import ImageAugmentation
from deepwright.models.encoders import EncoderInput
from deepwright.registry import FEATURES

__all__ = ["ImageEncoder", "ImageFeature", "ImageLayout", "decode_image"]

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
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
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
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise MediaError(f"{describe_cell(cell)} is not a readable image ({type(error).__name__})") from None


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
class ImageFeature(MediaFeature):
    """A column of images (see the module docstring)."""

    def __init__(self, options: ImageFeatureConfig, role: Role) -> None:
        super().__init__(options, role)
        self.layout_: ImageLayout | None = None
        self.mean_: list[float] | None = None
        self.std_: list[float] | None = None

    def fit(self, values: np.ndarray) -> None:
        cells = check_cells(values, "image")
        probes = probe_cells(cells, _probe)
        height, width = self.options.size or Counter((h, w) for h, w, _ in probes).most_common(1)[0][0]
        channels = self.options.channels or (1 if all(grey for _, _, grey in probes) else 3)
        self.layout_ = ImageLayout(channels, height, width, self.options.keep_aspect_ratio)
        images = self._decoded(cells)
        sample = images if isinstance(images, np.ndarray) else images[: min(len(images), _STATISTICS_SAMPLE)].numpy()
        pixels = sample.transpose(1, 0, 2, 3).reshape(channels, -1)
        self.mean_ = (pixels.mean(axis=1, dtype=np.float64) / 255).tolist()
        self.std_ = [max(value, 1e-3) for value in (pixels.std(axis=1, dtype=np.float64) / 255).tolist()]

    def transform(self, values: np.ndarray) -> np.ndarray | LazyColumn:
        check_is_fitted(self, "layout_")
        return self._decoded(check_cells(values, "image"))

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

    def encoder_input(self) -> EncoderInput:
        check_is_fitted(self, "layout_")
        return EncoderInput("grid", self.layout_.channels)

    def width(self) -> int:
        # The backbone is built with its weights, as it always was: a seeded run draws the same random numbers.
        return super().build_encoder().output_size

    def build_encoder(self) -> nn.Module:
        backbone = super().build_encoder()
        return ImageEncoder(backbone, ImageAugmentation(self.options.augmentation), self.mean_, self.std_)

    def request_hints(self) -> dict[str, Any]:
        """Input: what a request sends (an image file, inline) and an example: a mid-grey PNG of the model's size."""
        import base64
        import io

        from PIL import Image

        check_is_fitted(self, "layout_")
        layout = self.layout_
        image = Image.new("L" if layout.channels == 1 else "RGB", (layout.width, layout.height), "grey")
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        example = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
        return {"example": example, "accept": "image/*", "size": [layout.height, layout.width]}

    # -- helpers -----------------------------------------------------------------------------------------

    def _decoded(self, cells: np.ndarray) -> np.ndarray | LazyColumn:
        layout = self.layout_
        decoding = Decoding(
            "images",
            partial(decode_image, layout=layout),
            (layout.channels, layout.height, layout.width),
            "uint8",
            {"keep_aspect_ratio": layout.keep_aspect_ratio},
        )
        return decode_column(cells, decoding, cache_dir=self.cache_dir, memory_mb=self.options.cache_memory_mb)
