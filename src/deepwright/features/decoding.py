"""Columns of media files decoded once into fixed-shape arrays: the machinery the image and audio features share.

A `Decoding` says how one cell becomes an array: the function, the array's shape and dtype, and the settings the
result depends on besides the file. `decode_column` decides where a decoded column lives:

- beyond `memory_mb`, nowhere: a `LazyColumn` decodes the rows of each batch on access (the trainer then
  decodes in DataLoader worker processes);
- with a cache folder and only path cells, in a memory-mapped cache file whose name is a hash of every file's
  path, size and modification time and of the settings, so later runs on the same files read it back;
- otherwise (inline cells from a request, or no cache folder), in memory.

Files are decoded in threads (Pillow and libsndfile release the GIL). A cell that cannot be decoded raises
`ValueProblem(position, message)`, which the caller turns into an error naming the row. `MediaFeature` is the
base of the feature types whose cells are such files: it answers the contract's hooks for files.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepwright.data.clean import missing_mask
from deepwright.data.media import MediaError, is_inline, open_cell
from deepwright.errors import DataError
from deepwright.features.base import Feature, ValueProblem

__all__ = ["Decoding", "LazyColumn", "MediaFeature", "check_cells", "decode_column", "decode_into", "probe_cells"]


@dataclass(frozen=True)
class Decoding:
    """How a cell becomes an array: `decode(cell)` → an array of `shape` and `dtype` (a `MediaError` when the cell
    cannot be read); `kind` names cache files ('images', 'audio'); `settings` is what the result depends on
    besides the file (part of the cache key). `decode` must pickle, for worker processes."""

    kind: str
    decode: Callable[[Any], np.ndarray]
    shape: tuple[int, ...]
    dtype: str
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def bytes_per_item(self) -> int:
        """Bytes of one decoded cell."""
        return int(np.prod(self.shape)) * np.dtype(self.dtype).itemsize


def check_cells(values: np.ndarray, noun: str) -> np.ndarray:
    """The cells, once checked that none is empty (a file cannot be filled in) and that every path names a file,
    before anything is decoded or cached; `noun` ('image', 'audio') words the message.

    >>> check_cells(np.array([None], dtype=object), "audio")
    Traceback (most recent call last):
    ...
    deepwright.features.base.ValueProblem: the audio cell is empty; give a file path
    """
    missing = missing_mask(values)
    if missing.any():
        raise ValueProblem(int(np.flatnonzero(missing)[0]), f"the {noun} cell is empty; give a file path")
    for position, cell in enumerate(values):
        if not is_inline(cell):
            try:
                open_cell(cell)
            except MediaError as error:
                raise ValueProblem(position, str(error)) from None
    return values


def probe_cells(cells: np.ndarray, probe: Callable[[Any], Any]) -> list[Any]:
    """`probe` (a cheap header read) of every cell, a `MediaError` raised as the `ValueProblem` of its row."""
    probes = []
    for position, cell in enumerate(cells):
        try:
            probes.append(probe(cell))
        except MediaError as error:
            raise ValueProblem(position, str(error)) from None
    return probes


def decode_into(cells: np.ndarray, decoding: Decoding, out: np.ndarray) -> None:
    """Decode every cell into `out[i]`, in threads."""

    def decode(position: int) -> None:
        try:
            out[position] = decoding.decode(cells[position])
        except MediaError as error:
            raise ValueProblem(position, str(error)) from None

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for _ in pool.map(decode, range(len(cells)), chunksize=64):
            pass


class LazyColumn:
    """Cells decoded on access: `column[indices]` → a tensor (N, *shape). Used when the decoded column would not
    fit the memory budget; the trainer then decodes batches in worker processes."""

    def __init__(self, cells: np.ndarray, decoding: Decoding) -> None:
        self.cells = cells
        self.decoding = decoding
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
        out = np.empty((len(positions), *self.decoding.shape), dtype=self.decoding.dtype)
        for row, position in enumerate(positions):
            try:
                out[row] = self.decoding.decode(self.cells[position])
            except MediaError as error:
                number = None if self.row_numbers is None else int(self.row_numbers[position])
                raise DataError(str(error), column=self.column, row=number, source=self.source) from None
        return torch.from_numpy(out)


class MediaFeature(Feature):
    """A feature whose cells are files: paths in the data (resolved against its folder), inline in requests. Its
    decoded columns are cached in `cache_dir` when the caller gives one, and a lazily decoded column is told where
    its rows came from."""

    reads_files = True
    request_type = "media"

    def locate(self, array: Any, row_numbers: np.ndarray, source: str) -> None:
        if isinstance(array, LazyColumn):
            array.locate(row_numbers, source, self.name)


def decode_column(
    cells: np.ndarray, decoding: Decoding, *, cache_dir: Path | None, memory_mb: int
) -> np.ndarray | LazyColumn:
    """The decoded column: lazy beyond `memory_mb`, else from the cache file in `cache_dir` (made on a miss) when
    every cell is a path, else decoded in memory."""
    if len(cells) * decoding.bytes_per_item > memory_mb * 2**20:
        return LazyColumn(cells, decoding)
    if cache_dir is None or any(is_inline(cell) for cell in cells):
        decoded = np.empty((len(cells), *decoding.shape), dtype=decoding.dtype)
        decode_into(cells, decoding, decoded)
        return decoded
    return _cached(cells, decoding, cache_dir)


def _cached(cells: np.ndarray, decoding: Decoding, cache_dir: Path) -> np.ndarray:
    """The decoded cells from the memory-mapped cache file for exactly these files (decoding them first on a miss).
    The key covers each file's path, size and modification time, the shape and the decoding settings."""
    settings = {"shape": list(decoding.shape), "dtype": decoding.dtype, **decoding.settings}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for cell in cells:
        status = os.stat(cell)
        digest.update(f"{cell}\0{status.st_size}\0{status.st_mtime_ns}\n".encode())
    key = digest.hexdigest()[:32]
    dtype = np.dtype(decoding.dtype)
    data = cache_dir / f"{decoding.kind}-{key}.{dtype.kind}{dtype.itemsize * 8}"  # images-….u8, audio-….f16
    marker = cache_dir / f"{decoding.kind}-{key}.json"
    shape = (len(cells), *decoding.shape)
    if not marker.is_file():
        cache_dir.mkdir(parents=True, exist_ok=True)
        temporary = data.with_suffix(f".{os.getpid()}.partial")  # each process its own: ranks decode at once
        decoded = np.lib.format.open_memmap(temporary, mode="w+", dtype=decoding.dtype, shape=shape)
        try:
            decode_into(cells, decoding, decoded)
            decoded.flush()
            del decoded
            os.replace(temporary, data)
        finally:
            temporary.unlink(missing_ok=True)
        marker.write_text(json.dumps({"shape": list(shape), "files": len(cells)}), encoding="utf-8")
    return np.load(data, mmap_mode="c")
