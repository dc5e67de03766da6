"""Media cells: image and audio files named by path, or sent inline as base64 (in requests).

A cell is a path (relative paths resolve against the data file's folder), raw bytes, a `data:` URL
(`data:image/png;base64,…`), or a mapping `{"base64": "…"}`.
"""

from __future__ import annotations

import base64
import binascii
import io
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

__all__ = [
    "AUDIO_SUFFIXES",
    "IMAGE_SUFFIXES",
    "MediaError",
    "describe_cell",
    "is_inline",
    "open_cell",
    "resolve_paths",
]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"})
AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg"})


class MediaError(ValueError):
    """A cell that names no readable file or holds no valid payload; the message says which."""


def is_inline(value: Any) -> bool:
    """Whether a cell carries its content (bytes, a data URL or {"base64": …}) rather than a path."""
    return isinstance(value, (bytes, bytearray, dict)) or (isinstance(value, str) and value.startswith("data:"))


def resolve_paths(values: np.ndarray, base_dir: Path | None) -> np.ndarray:
    """Relative path cells made absolute against `base_dir`; inline and missing cells unchanged."""
    if base_dir is None:
        return values
    resolved = np.empty(len(values), dtype=object)
    for index, value in enumerate(values):
        if isinstance(value, (str, Path)) and not is_inline(value) and str(value).strip():
            path = Path(str(value).strip())
            resolved[index] = str(path if path.is_absolute() else base_dir / path)
        else:
            resolved[index] = value
    return resolved


def open_cell(value: Any) -> BinaryIO | str:
    """A binary stream of an inline cell's decoded bytes, or the path of a path cell (checked to exist)."""
    if isinstance(value, (bytes, bytearray)):
        return io.BytesIO(bytes(value))
    if isinstance(value, dict):
        if set(value) != {"base64"} or not isinstance(value["base64"], str):
            raise MediaError('an inline file is {"base64": "<base64 text>"}')
        return io.BytesIO(_decode_base64(value["base64"]))
    text = str(value)
    if text.startswith("data:"):
        header, _, payload = text.partition(",")
        if ";base64" not in header:
            raise MediaError("a data URL must be base64-encoded (data:<type>;base64,<payload>)")
        return io.BytesIO(_decode_base64(payload))
    if not Path(text).is_file():
        raise MediaError(
            f"file {text!r} does not exist; check the path (relative paths start at the data file's folder)"
        )
    return text


def describe_cell(value: Any) -> str:
    """A short name for a cell in messages: its path, or 'the base64 payload'."""
    return "the base64 payload" if is_inline(value) else repr(str(value))


def _decode_base64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise MediaError("the payload is not valid base64") from None
