"""Checkpoints: the whole training state in one file, written atomically, read without unpickling code.

A file is `torch.save`'s format holding only tensors, numbers, strings, lists and dicts, and it is always read
with `torch.load(weights_only=True)`, which refuses anything else. A write goes to a temporary file in the same
folder, is flushed and fsynced, renamed over the target (`os.replace`), and the folder is fsynced: a process killed
at any moment, or a machine that loses power, leaves either the old file or the new one, never half of one.

A run keeps its checkpoints in one folder (`CheckpointFolder`): `step-00000120.pt` for each of the last `keep`
(named by the optimizer step they were taken at), and `last.pt`, the newest, which is a hard link to the newest
step file (a copy where the filesystem has no hard links), so that `last.pt` is always a whole checkpoint that
`torch.load` reads by itself. When `last.pt` cannot be read, the newest step file that can is used instead, with a
warning.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch

from deepwright.errors import DataError, DeepwrightWarning

__all__ = ["CheckpointFolder", "load_checkpoint", "save_checkpoint", "sync_folder", "write_atomically"]

_STEP_FILE = re.compile(r"step-(\d+)\.pt")


def write_atomically(path: str | Path, write: Callable[[IO[bytes]], None], *, sync: bool = True) -> None:
    """Call `write` with a binary file that becomes `path` only once it is whole and on disk: a temporary file
    beside `path`, flushed and fsynced, renamed over `path`, then the folder fsynced (unless `sync` is False: a
    caller that renames more in the folder fsyncs it once, after the last). On an error (or a kill) the old
    `path` stays as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)
    if sync:
        sync_folder(path.parent)


def sync_folder(folder: Path) -> None:
    """fsync `folder`, so that the renames in it are on disk too (nothing to do where folders cannot be opened)."""
    if os.name == "nt":
        return
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def save_checkpoint(path: str | Path, payload: dict[str, Any], *, sync: bool = True) -> None:
    """Write `payload` to `path` atomically (`write_atomically`)."""
    write_atomically(path, lambda file: torch.save(payload, file), sync=sync)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`; a missing or unreadable file is a `DataError`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            "no checkpoint here; the run has not saved one yet, start it without --resume", source=str(path)
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated file or one that holds more than plain data
        raise DataError(
            f"cannot read the checkpoint: it is torn, damaged or holds more than tensors and plain data "
            f"({type(error).__name__}); start the run again without --resume",
            source=str(path),
        ) from None


class CheckpointFolder:
    """The checkpoints of one run: `last.pt` (the path given) and, beside it, the last `keep` step files."""

    def __init__(self, last: str | Path, keep: int = 2) -> None:
        self.last = Path(last)
        self.folder = self.last.parent
        self.keep = keep

    def step_files(self) -> list[Path]:
        """The step files in the folder, newest (highest step) first."""
        if not self.folder.is_dir():
            return []
        paths = [path for path in self.folder.iterdir() if _STEP_FILE.fullmatch(path.name)]
        return sorted(paths, key=_step_number, reverse=True)

    def save(self, payload: dict[str, Any]) -> None:
        """Write `payload` (taken at optimizer step `payload["step"]`) as the newest checkpoint: its step file,
        then `last.pt`, each atomically; then remove the step files beyond the last `keep`, any left from steps
        after this one (a run resumed from an older checkpoint takes those steps again), and the temporary files
        of a write that a kill cut short."""
        step = payload["step"]
        newest = self.folder / f"step-{step:08d}.pt"
        save_checkpoint(newest, payload, sync=False)
        _link_or_copy(newest, self.last)  # then the folder is fsynced, once for both
        older = [path for path in self.step_files() if path != newest]
        kept = [path for path in older if _step_number(path) < step][: self.keep - 1]
        for path in older:
            if path not in kept:
                path.unlink(missing_ok=True)
        for path in self.folder.glob(".*.partial"):  # left by a run killed while it wrote (one writer: no other)
            path.unlink(missing_ok=True)

    def load(self) -> dict[str, Any]:
        """The newest checkpoint that can be read: `last.pt`, or when it is torn or corrupt, the newest readable
        step file (with a `DeepwrightWarning`). A `DataError` when there is no `last.pt` or nothing is readable."""
        try:
            return load_checkpoint(self.last)
        except DataError as error:
            if not self.last.is_file():
                raise
            failure = error
        reason = failure.reason.split(";")[0].removeprefix("cannot read the checkpoint: ")
        for path in self.step_files():
            if os.path.samefile(path, self.last):
                continue  # the same file as last.pt, just as unreadable
            try:
                checkpoint = load_checkpoint(path)
            except DataError:
                continue
            warnings.warn(
                DeepwrightWarning(
                    f"{self.last} cannot be read: {reason}; resuming from {path.name}, the newest checkpoint that can"
                ),
                stacklevel=2,
            )
            return checkpoint
        raise failure


def _step_number(path: Path) -> int:
    match = _STEP_FILE.fullmatch(path.name)
    return int(match.group(1)) if match else -1


def _link_or_copy(source: Path, target: Path) -> None:
    """Make `target` the same file as `source` atomically: a hard link (a copy where links are not supported)
    under a temporary name, renamed over `target`."""
    temporary = target.with_name(f".{target.name}.link.partial")
    temporary.unlink(missing_ok=True)
    try:
        try:
            os.link(source, temporary)
        except OSError:
            write_atomically(temporary, lambda file: _copy_into(source, file), sync=False)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    sync_folder(target.parent)


def _copy_into(source: Path, file: IO[bytes]) -> None:
    with open(source, "rb") as read:
        shutil.copyfileobj(read, file)
