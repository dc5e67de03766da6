"""Reading a data file in chunks of rows, so that a file larger than memory can be predicted piece by piece.

CSV and TSV (plain or compressed) are read by pyarrow's streaming reader, Parquet by row groups, JSON Lines in
pandas chunks; other sources (a folder of class folders, a JSON array, a DataFrame) are read whole and given as
one chunk. Delimited text is read as strings: every chunk then has the same column types whatever values it
holds (a typed reader fixes types from the first block and fails on a later one), and the features read numbers
and labels from strings as they do from typed values. Each chunk is a `Table` whose index continues the file's
row count, so messages name the row in the file.

>>> for chunk in read_chunks("big.csv", columns=["age", "city"], chunk_rows=10_000):   # doctest: +SKIP
...     predictions = predictor.predict(chunk.table)
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd

from deepwright.data.io import (
    SUPPORTED_SUFFIXES,
    Table,
    as_text,
    check_unique_names,
    not_utf8,
    read_table,
    utf8_problem,
)
from deepwright.errors import DataError

__all__ = ["Chunk", "read_chunks", "read_delimited_bytes"]

_BLOCK_BYTES = 4 << 20  # bytes pyarrow reads and parses at a time
_HEADER_BYTES = 16 << 20  # the longest header line read (a file without line breaks is not read whole for it)
_COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd"}


@dataclass
class Chunk:
    """Rows of a file as a `Table`, and how far through the file they reach (0..1)."""

    table: Table
    done: float


def read_chunks(source: Any, *, columns: list[str], chunk_rows: int = 10_000) -> Iterator[Chunk]:
    """The rows of `source` in chunks of at most `chunk_rows`, with the `columns` it must hold (a `DataError`
    naming the missing ones otherwise). Only those columns are read from files that can be streamed."""
    if not isinstance(source, (str, os.PathLike)) or Path(source).is_dir():
        yield _whole(read_table(source), columns)
        return
    path = Path(source)
    if not path.is_file():
        raise DataError("no such file; check the path", source=str(path))
    suffixes = [suffix.lower() for suffix in path.suffixes]
    compression = _COMPRESSIONS.get(suffixes[-1]) if suffixes else None
    if compression:
        suffixes = suffixes[:-1]
    kind = SUPPORTED_SUFFIXES.get(suffixes[-1] if suffixes else "", "csv")
    if kind in ("csv", "tsv") and path.stat().st_size > 0:
        yield from _delimited(path, "," if kind == "csv" else "\t", compression, columns, chunk_rows)
    elif kind == "parquet":
        yield from _parquet(path, columns, chunk_rows)
    elif kind == "jsonl" and compression is None and _is_json_lines(path):
        yield from _json_lines(path, columns, chunk_rows)
    else:
        yield _whole(read_table(path), columns)


def read_delimited_bytes(data: bytes, *, columns: list[str], source: str, delimiter: str = ",") -> Table:
    """A CSV (or TSV) held in memory, such as an upload, as one `Table` read the way `read_chunks` reads files."""
    raw = io.BytesIO(data)
    header = _header(raw, delimiter, source)
    raw.seek(0)
    chunks = list(_delimited_stream(raw, raw, header, (source, data), Path.cwd(), delimiter, columns, 1 << 62, None))
    if not chunks:
        raise DataError("the file has a header but no data rows", source=source)
    return chunks[0].table


# -- formats -----------------------------------------------------------------------------------------------


def _delimited(path: Path, delimiter: str, compression: str | None, columns: list[str], rows: int) -> Iterator[Chunk]:
    size = path.stat().st_size
    if compression is not None:  # the header from a handle of its own: a decompressing stream closes its file
        with open(path, "rb") as first:
            header = _header(_decompressed(first, compression), delimiter, path)
    with open(path, "rb") as raw:
        if compression is None:
            header = _header(raw, delimiter, path)
            raw.seek(0)
        stream = raw if compression is None else _decompressed(raw, compression)
        yield from _delimited_stream(
            raw, stream, header, (str(path), path), path.resolve().parent, delimiter, columns, rows, size
        )


def _delimited_stream(
    raw: BinaryIO,
    stream: Any,
    header: list[str],
    origin: tuple[str, Path | bytes],
    base_dir: Path,
    delimiter: str,
    columns: list[str],
    chunk_rows: int,
    size: int | None,
) -> Iterator[Chunk]:
    """Chunks of the delimited text of `stream` (`raw` itself, or its decompression) whose first line is
    `header`; progress is `raw`'s position over `size`. `origin` is the source's name and its file or bytes."""
    import pyarrow as pa
    from pyarrow import csv as arrow_csv

    source = origin[0]
    _require(header, columns, source)
    try:
        reader = arrow_csv.open_csv(
            stream,
            read_options=arrow_csv.ReadOptions(block_size=_BLOCK_BYTES),
            parse_options=arrow_csv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            convert_options=arrow_csv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()),
                include_columns=columns,
                strings_can_be_null=True,
            ),
        )
        _check_schema(reader.schema, columns or header, origin)
        start = 0
        for batch in _rebatched(reader, chunk_rows):
            done = raw.tell() / size if size else 1.0
            yield Chunk(_table(batch.to_pandas(), start, source, base_dir), min(done, 1.0))
            start += batch.num_rows
    except pa.ArrowInvalid as error:
        reason = str(error).strip().splitlines()[0]
        problem = utf8_problem(origin[1], source)  # a parse error in text that is not UTF-8 is its encoding's fault
        if problem is not None:
            raise problem from None
        raise DataError(f"cannot be read as CSV ({reason}); check the file's format", source=source) from None


def _check_schema(schema: Any, names: list[str], origin: tuple[str, Path | bytes]) -> None:
    """A `DataError` unless pyarrow read the header as `_header` did (`names`) and every column as text: a
    column name or a cell that is not UTF-8 breaks both."""
    import pyarrow as pa

    try:
        read = schema.names
    except UnicodeDecodeError:  # pyarrow cannot even name the column
        raise not_utf8(origin[1], origin[0]) from None
    if any(pa.types.is_binary(field.type) for field in schema):
        raise not_utf8(origin[1], origin[0])
    if read != names:
        raise DataError(
            "the header line cannot be read the same way twice (a quoted column name holding a line break?); "
            "put every column name on the first line",
            source=origin[0],
        )


def _parquet(path: Path, columns: list[str], chunk_rows: int) -> Iterator[Chunk]:
    import pyarrow.parquet as parquet

    try:
        file = parquet.ParquetFile(path)
    except Exception as error:  # pyarrow raises several types for a file that is not Parquet
        raise DataError(f"cannot be read as PARQUET ({error}); check the file's format", source=str(path)) from None
    check_unique_names(file.schema_arrow.names, str(path))
    _require(file.schema_arrow.names, columns, str(path))
    total = max(file.metadata.num_rows, 1)
    start = 0
    for batch in file.iter_batches(batch_size=chunk_rows, columns=columns):
        start += batch.num_rows
        table = _table(as_text(batch, str(path)).to_pandas(), start - batch.num_rows, str(path), path.resolve().parent)
        yield Chunk(table, start / total)


def _json_lines(path: Path, columns: list[str], chunk_rows: int) -> Iterator[Chunk]:
    size = max(path.stat().st_size, 1)
    with open(path, "rb") as handle:
        start = 0
        try:
            for frame in pd.read_json(handle, lines=True, chunksize=chunk_rows):
                _require(list(frame.columns), columns, str(path))
                yield Chunk(_table(frame[columns], start, str(path), path.resolve().parent), handle.tell() / size)
                start += len(frame)
        except ValueError as error:
            raise DataError(f"cannot be read as JSONL ({error}); check the file's format", source=str(path)) from None


def _whole(table: Table, columns: list[str]) -> Chunk:
    table.require_columns(columns, "input")
    return Chunk(table, 1.0)


# -- helpers -----------------------------------------------------------------------------------------------


def _header(stream: Any, delimiter: str, source: str | Path) -> list[str]:
    """The column names on the first line of delimited text (ended by LF, CRLF or a classic-Mac CR alone)."""
    first = bytearray()
    while b"\n" not in first and b"\r" not in first:  # read(), not readline(): compressed streams have only read()
        block = stream.read(1 << 16)
        if not block:
            break
        first += block
        if len(first) > _HEADER_BYTES:
            raise DataError(
                f"the first line is longer than {_HEADER_BYTES >> 20} MiB; is this a delimited text file?",
                source=source,
            )
    first = re.split(b"[\r\n]", bytes(first), maxsplit=1)[0]
    if not first.strip():
        raise DataError("the file is empty; it needs a header line and at least one row", source=source)
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise not_utf8(first, str(source)) from None
    names = next(csv.reader([text], delimiter=delimiter))
    check_unique_names(names, str(source))
    return names


def _require(names: list[str], columns: list[str], source: str) -> None:
    """A `DataError` naming every one of `columns` missing from `names` (the same message `read_table` gives)."""
    Table(pd.DataFrame(columns=names), source, Path.cwd()).require_columns(columns, "input")


def _rebatched(reader: Any, rows: int) -> Iterator[Any]:
    """The reader's record batches regrouped into tables of exactly `rows` rows (the last one shorter)."""
    import pyarrow as pa

    pending: list[Any] = []
    count = 0
    for batch in reader:
        pending.append(batch)
        count += batch.num_rows
        while count >= rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, rows)
            rest = table.slice(rows)
            pending, count = rest.to_batches(), rest.num_rows
    if count:
        yield pa.Table.from_batches(pending)


def _table(frame: pd.DataFrame, start: int, source: str, base_dir: Path) -> Table:
    """A chunk's frame as a `Table` whose index counts rows from the file's first data row."""
    frame.index = pd.RangeIndex(start, start + len(frame))
    return Table(frame, source, base_dir)


def _decompressed(raw: BinaryIO, compression: str) -> Any:
    import pyarrow as pa

    return pa.CompressedInputStream(pa.PythonFile(raw, mode="r"), compression)


def _is_json_lines(path: Path) -> bool:
    """Whether a .json/.jsonl file holds one object per line rather than one JSON array."""
    with open(path, "rb") as handle:
        return not handle.read(1024).lstrip().startswith(b"[")
