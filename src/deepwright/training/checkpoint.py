"""Checkpoints: the whole training state in one file, written atomically, read without unpickling code.

The file is `torch.save`'s format holding only tensors, numbers, strings, lists and dicts, and it is always
read with `torch.load(weights_only=True)`, which refuses anything else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from deepwright.data.io import atomic_path
from deepwright.errors import DataError

__all__ = ["load_checkpoint", "save_checkpoint"]


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write `payload` to `path` under a temporary name, then rename it into place."""
    with atomic_path(path) as temporary:
        torch.save(payload, temporary)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`; a missing or unreadable file is a `DataError`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            "no checkpoint here; the run has not finished an epoch yet, start it without --resume",
            source=str(path),
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated file or one that holds more than plain data
        raise DataError(
            f"cannot read the checkpoint ({error}); start the run again without --resume", source=str(path)
        ) from None
