"""Reading tables: CSV, TSV, Parquet, JSON Lines, pandas DataFrames and Arrow tables, into a `Table`.

Every failure is a `DataError` that names the file and says what to do, never a parser's traceback.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from deepwright.errors import DataError

__all__ = ["SUPPORTED_SUFFIXES", "Table", "atomic_path", "read_class_folders", "read_table", "safe_name"]

SUPPORTED_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}


@dataclass
class Table:
    """A data frame with the name of where it came from (for error messages) and the folder that relative
    paths inside it resolve against. Row numbers in messages count data rows from 1 (the header is not a row)."""

    frame: pd.DataFrame
    source: str
    base_dir: Path

    def __len__(self) -> int:
        return len(self.frame)

    def require_columns(self, columns: list[str], role: str) -> None:
        """Raise a `DataError` naming every column of `columns` that the table lacks."""
        missing = [column for column in columns if column not in self.frame.columns]
        if missing:
            names = ", ".join(repr(column) for column in missing)
            available = ", ".join(repr(str(column)) for column in self.frame.columns[:20])
            more = ", …" if len(self.frame.columns) > 20 else ""
            raise DataError(
                f"{role} column{'s' if len(missing) > 1 else ''} {names} not found; the data has {available}{more}. "
                "Fix the name in the config or add the column to the data.",
                source=self.source,
            )


def read_table(source: Any, *, name: str | None = None) -> Table:
    """Read `source` (a path, a pandas DataFrame or a pyarrow Table) into a `Table`.

    >>> import pandas as pd
    >>> len(read_table(pd.DataFrame({"x": [1, 2]})))
    2
    """
    if isinstance(source, Table):
        return source
    if isinstance(source, pd.DataFrame):
        return Table(source.reset_index(drop=True), name or "the data frame", Path.cwd())
    if type(source).__module__.startswith("pyarrow") and hasattr(source, "to_pandas"):
        return Table(source.to_pandas(), name or "the Arrow table", Path.cwd())
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        base_dir = path.resolve() if path.is_dir() else path.resolve().parent
        return Table(_read_file(path), str(path), base_dir)
    raise DataError(f"cannot read data from a {type(source).__name__}; give a file path, a DataFrame or an Arrow table")


def _read_file(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise DataError("no such file; check the path", source=str(path))
    if path.is_dir():
        return read_class_folders(path)
    suffixes = [suffix.lower() for suffix in path.suffixes]
    if suffixes and suffixes[-1] in (".gz", ".bz2", ".zst"):
        suffixes = suffixes[:-1]
    kind = SUPPORTED_SUFFIXES.get(suffixes[-1] if suffixes else "", "csv")
    try:
        if path.stat().st_size == 0:
            raise DataError("the file is empty; it needs a header line and at least one row", source=str(path))
        frame = _READERS[kind](path)
    except DataError:
        raise
    except PermissionError:
        raise DataError("permission denied; make the file readable", source=str(path)) from None
    except Exception as error:  # every parser has its own exception types; all mean "cannot read this file"
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        reason = reason if len(reason) <= 120 else reason[:117] + "…"
        raise DataError(
            f"cannot be read as {kind.upper()} ({reason}); check the file's format", source=str(path)
        ) from None
    if len(frame.columns) == 0:
        raise DataError("the file has no columns; it needs a header line", source=str(path))
    if len(frame) == 0:
        raise DataError("the file has a header but no data rows", source=str(path))
    return frame


def read_class_folders(folder: Path) -> pd.DataFrame:
    """A folder of class folders (`folder/<label>/<file>`) as a table: a column of relative file paths named after
    the media kind ('image' or 'audio') and a `label` column holding each file's folder name."""
    from deepwright.data.media import AUDIO_SUFFIXES, IMAGE_SUFFIXES

    classes = sorted(child for child in folder.iterdir() if child.is_dir() and not child.name.startswith("."))
    if not classes:
        raise DataError(
            "is a folder without class folders; give a data file, or a folder holding one folder of files per class",
            source=str(folder),
        )
    rows: list[tuple[str, str]] = []
    kinds: set[str] = set()
    for class_folder in classes:
        files = sorted(
            file
            for file in class_folder.rglob("*")
            if file.is_file() and file.suffix.lower() in IMAGE_SUFFIXES | AUDIO_SUFFIXES
        )
        if not files:
            raise DataError(
                f"class folder {class_folder.name!r} holds no image or audio files; add some or remove the folder",
                source=str(folder),
            )
        kinds |= {"image" if file.suffix.lower() in IMAGE_SUFFIXES else "audio" for file in files}
        rows += [(file.relative_to(folder).as_posix(), class_folder.name) for file in files]
    if len(kinds) > 1:
        raise DataError("holds both image and audio files; keep one kind per dataset", source=str(folder))
    return pd.DataFrame(rows, columns=[kinds.pop(), "label"])


def _read_delimited(path: Path, delimiter: str) -> pd.DataFrame:
    from pyarrow import csv

    table = csv.read_csv(
        path,
        parse_options=csv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
        convert_options=csv.ConvertOptions(strings_can_be_null=True),
    )
    return table.to_pandas()


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow.parquet as parquet

    return parquet.read_table(path).to_pandas()


def _read_jsonl(path: Path) -> pd.DataFrame:
    with open(path, "rb") as handle:
        first = handle.read(1024).lstrip()
    if first.startswith(b"["):
        return pd.read_json(path, orient="records")
    return pd.read_json(path, lines=True)


_READERS = {
    "csv": lambda path: _read_delimited(path, ","),
    "tsv": lambda path: _read_delimited(path, "\t"),
    "parquet": _read_parquet,
    "jsonl": _read_jsonl,
}


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success it is renamed to `target`, on failure removed.

    Nothing is ever left half-written under the target's name.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(handle)
    temporary_path = Path(temporary)
    try:
        yield temporary_path
        os.replace(temporary_path, target)
    finally:
        temporary_path.unlink(missing_ok=True)


_DATA_SUFFIXES = (".gz", ".bz2", ".zst", ".csv", ".tsv", ".tab", ".parquet", ".pq", ".jsonl", ".ndjson", ".json")


def safe_name(source: str) -> str:
    """A file or folder name from a data path or a run name: its last part, without data suffixes, with
    anything but letters, digits, '-', '_' and inner dots replaced, so it cannot leave its folder.

    >>> safe_name("data/titanic.csv"), safe_name("../escaped"), safe_name("exp/one")
    ('titanic', 'escaped', 'one')
    """
    name = Path(str(source).replace("\\", "/")).name
    for suffix in _DATA_SUFFIXES:
        name = name.removesuffix(suffix)
    name = "".join(character if character.isalnum() or character in "-_." else "_" for character in name)
    return name.strip(".") or "run"
