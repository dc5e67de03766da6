"""Reading tables: CSV, TSV, Parquet, JSON Lines, pandas DataFrames and Arrow tables, into a `Table`.

Every failure is a `DataError` that names the file and says what to do, never a parser's traceback.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from deepwright.errors import DataError, DeepwrightError

__all__ = [
    "SUPPORTED_SUFFIXES",
    "Table",
    "as_text",
    "atomic_path",
    "check_unique_names",
    "check_writable",
    "disk_problem",
    "not_utf8",
    "read_class_folders",
    "read_table",
    "safe_name",
    "utf8_problem",
    "write_problem",
]

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
        table = Table(source.reset_index(drop=True), name or "the data frame", Path.cwd())
    elif type(source).__module__.startswith("pyarrow") and hasattr(source, "to_pandas"):
        table = Table(source.to_pandas(), name or "the Arrow table", Path.cwd())
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        base_dir = path.resolve() if path.is_dir() else path.resolve().parent
        table = Table(_read_file(path), str(path), base_dir)
    else:
        kind = type(source).__name__
        raise DataError(f"cannot read data from a {kind}; give a file path, a DataFrame or an Arrow table")
    check_unique_names([str(column) for column in table.frame.columns], table.source)
    return table


def check_unique_names(names: list[str], source: str) -> None:
    """Raise a `DataError` naming every column name that `names` holds more than once.

    >>> check_unique_names(["a", "b", "a"], "data.csv")
    Traceback (most recent call last):
    ...
    deepwright.errors.DataError: data.csv: the column name 'a' appears more than once; give every column its own name
    """
    seen: set[str] = set()
    repeated = list(dict.fromkeys(name for name in names if name in seen or seen.add(name)))
    if repeated:
        listed = ", ".join(repr(name) for name in repeated)
        plural = "s" if len(repeated) > 1 else ""
        raise DataError(
            f"the column name{plural} {listed} appear{'' if plural else 's'} more than once; "
            "give every column its own name",
            source=source,
        )


def not_utf8(source: str | Path | bytes, name: str) -> DataError:
    """The `DataError` for delimited text known not to be UTF-8 (`utf8_problem`'s, or a general one).

    Text is read as UTF-8 only: guessing another encoding would turn the same bytes into different labels on
    different machines.
    """
    fallback = DataError("cannot be read as CSV, it is not UTF-8 text; save it as UTF-8", source=name)
    return utf8_problem(source, name) or fallback


def utf8_problem(source: str | Path | bytes, name: str) -> DataError | None:
    """The `DataError` naming the line and byte of the first byte of the file (or bytes) `source` that is not
    UTF-8, and how to convert the file; None when it is all UTF-8.

    >>> str(utf8_problem("a,b\\nNa\\xefve,1\\n".encode("latin-1"), "data.csv")).split(": ", 2)[2].split(";")[0]
    'line 2 has the byte 0xef at byte 7 of the file (…Na\\\\xefve,1…)'
    """
    import codecs

    import pyarrow as pa

    stream = pa.BufferReader(source) if isinstance(source, bytes) else pa.input_stream(str(source))
    decoder, offset, line = codecs.getincrementaldecoder("utf-8")(), 0, 1
    with stream:
        while block := stream.read(1 << 20):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as error:
                at = error.start
                start = max(block.rfind(b"\n", 0, at) + 1, block.rfind(b"\r", 0, at) + 1, at - 30)
                ends = [end for end in (block.find(b"\n", at), block.find(b"\r", at)) if end >= 0]
                shown = repr(block[start : min([*ends, at + 30])])[2:-1]
                line += block[:at].count(b"\n") or block[:at].count(b"\r")
                where = f"line {line} has the byte 0x{block[at]:02x} at byte {offset + at + 1} of the file"
                return DataError(
                    f"cannot be read as CSV, it is not UTF-8 text: {where} (…{shown}…); save it as UTF-8 (a "
                    "spreadsheet's 'CSV UTF-8', or iconv -f latin1 -t utf-8 FILE > NEW.csv for a latin-1 file)",
                    source=name,
                )
            offset += len(block)
            line += block.count(b"\n") or block.count(b"\r")
    return None


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
    import pyarrow as pa
    from pyarrow import csv

    try:
        table = csv.read_csv(
            path,
            parse_options=csv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            convert_options=csv.ConvertOptions(strings_can_be_null=True),
        )
    except pa.ArrowInvalid:  # a parse error in a UTF-16 file, say, is its encoding's fault
        problem = utf8_problem(path, str(path))
        if problem is None:
            raise
        raise problem from None
    try:  # pyarrow reads cells that are not UTF-8 as bytes, never to be labels of b'...'; names fail to decode
        utf8 = not any(pa.types.is_binary(field.type) or "\ufffd" in field.name for field in table.schema)
    except UnicodeDecodeError:
        utf8 = False
    if not utf8:
        raise not_utf8(path, str(path))
    return table.to_pandas()


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow.parquet as parquet

    return as_text(parquet.read_table(path), str(path)).to_pandas()


def as_text(table: Any, source: str) -> Any:
    """The Arrow `table` (or record batch) with its byte columns decoded as UTF-8 text: bytes are text to a
    table model, never labels of b'…'; a column that is not UTF-8 is a `DataError` naming it."""
    import pyarrow as pa

    for index, field in enumerate(table.schema):
        if pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type):
            try:
                table = table.set_column(index, field.name, table.column(index).cast(pa.string()))
            except pa.ArrowInvalid:
                raise DataError(
                    "holds bytes that are not UTF-8 text; store the column as UTF-8 strings",
                    column=field.name,
                    source=source,
                ) from None
    return table


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
    """Yield a new, empty temporary path beside `target`; on success it is renamed to `target`, on failure removed.

    Nothing is ever left half-written under the target's name. The file gets the permissions of any new file
    (0666 less the umask), not the 0600 of `tempfile`. A write that fails for a reason of the machine's (a
    read-only folder, a full disk, the file-size limit, a folder in the way) is a `DataError` naming `target`.
    A link is followed (the file it points to is replaced, not the link); a device or a pipe (`/dev/null`,
    `/dev/stdout`, a FIFO) is written in place: there is no file to replace, and replacing it would be wrong.
    """
    target = Path(target)
    try:
        mode: int | None = os.stat(target).st_mode  # through links: /dev/stdout is a link to a pipe
    except OSError:
        mode = None
    in_place = mode is not None and not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)
    if not in_place and target.is_symlink():
        target = target.resolve()
    temporary = target if in_place else _new_file_beside(target)
    try:
        yield temporary
        if not in_place:
            os.replace(temporary, target)
    except Exception as error:
        problem = write_problem(error, target, None if in_place else temporary)
        if problem is None:
            raise
        raise problem from None
    finally:
        if not in_place:
            temporary.unlink(missing_ok=True)


def check_writable(target: str | Path, *, folder: bool, option: str = "--output") -> None:
    """Raise a `DataError` now, before any work, when `target` (a file, or a `folder` of files) cannot be
    written: a folder where a file is wanted or the other way round, a file in the way of its parent folders,
    or a folder where new files cannot be made. Nothing is left behind: missing folders are not created, the
    nearest folder that exists is tried instead."""
    target = Path(target)
    wanted, other = ("a folder", "a file") if folder else ("a file", "a folder")
    if target.exists() and target.is_dir() != folder:
        raise DataError(f"{option} needs {wanted}, and this is {other}; give another path", source=str(target))
    existing = target if folder else target.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise DataError(f"cannot be written: {_WRITE_ERRORS[errno.ENOTDIR]}")
        _new_file_beside(existing / "write-check").unlink()
    except DataError as error:
        raise DataError(f"{option} {error.reason}", source=str(target)) from None


def disk_problem(error: BaseException) -> DataError | None:
    """The `DataError` for an `error` met while writing anywhere that can only mean the machine refused the
    bytes (a full disk, the quota, the file-size limit, a read-only file system); None for any other error.

    >>> disk_problem(OSError(28, "No space left on device", "runs/x/log.jsonl"))
    DataError('runs/x/log.jsonl: cannot be written: the disk is full; free some space or write elsewhere')
    """
    code = error.errno if isinstance(error, OSError) else _os_error_code(str(error))
    if isinstance(error, DeepwrightError) or code not in _DISK_ERRORS:
        return None
    return DataError(f"cannot be written: {_WRITE_ERRORS[code]}", source=getattr(error, "filename", None) or "output")


def write_problem(error: BaseException, target: Path, temporary: Path | None = None) -> DataError | None:
    """The `DataError` that says why writing `target` failed, when `error` comes from the machine rather than
    from deepwright (a full disk, the file-size limit, no permission, a folder in the way); None otherwise.

    Some writers hide the operating system's error in their own: safetensors quotes its number, torch loses
    it, so a full disk and the file-size limit are also recognised by looking at the disk and at the limit.
    """
    if isinstance(error, DeepwrightError):
        return None
    named = getattr(error, "filename", None)
    if named is not None and Path(named) not in (target, temporary, *target.parents):
        return None  # about another file, such as one being read
    code = error.errno if isinstance(error, OSError) else _os_error_code(str(error))
    reason = _WRITE_ERRORS.get(code)
    if reason is None and temporary is not None:
        reason = _machine_limit(temporary)
    if reason is None:
        return None
    return DataError(f"cannot be written: {reason}", source=str(target))


_WRITE_ERRORS = {
    errno.ENOSPC: "the disk is full; free some space or write elsewhere",
    errno.EDQUOT: "the disk quota is used up; free some space or write elsewhere",
    errno.EFBIG: "the file would be larger than the file-size limit (ulimit -f); raise the limit or write less",
    errno.EROFS: "the folder is on a read-only file system; write elsewhere",
    errno.EACCES: "permission denied; make the folder writable or write elsewhere",
    errno.EPERM: "permission denied; make the folder writable or write elsewhere",
    errno.EISDIR: "a folder of that name is in the way; remove it or give another path",
    errno.ENOTDIR: "a file stands where a folder is needed on the path; remove it or give another path",
    errno.EEXIST: "a file stands where a folder is needed on the path; remove it or give another path",
    errno.ENOENT: "the folder cannot hold new files; give another path",
    errno.ENAMETOOLONG: "the name is too long; give a shorter path",
}


_DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS)


def _os_error_code(message: str) -> int | None:
    """The operating system's error number quoted in another library's message ('… (os error 28)'), if any."""
    found = re.search(r"os error (\d+)", message)
    return int(found.group(1)) if found else None


def _machine_limit(temporary: Path) -> str | None:
    """Whether the disk beside `temporary` is full or `temporary` reached the file-size limit: the reason, or None."""
    try:
        size = temporary.stat().st_size
        disk = os.statvfs(temporary.parent)
    except OSError:
        return None
    if disk.f_bavail * disk.f_frsize < 1 << 20:
        return _WRITE_ERRORS[errno.ENOSPC]
    import resource

    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY and size >= limit:
        return _WRITE_ERRORS[errno.EFBIG]
    return None


def _new_file_beside(target: Path) -> Path:
    """Create an empty file under a new hidden name in `target`'s folder (made when missing) with the umask's
    permissions; a `DataError` when that folder cannot be written."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        while True:
            temporary = target.parent / f".{target.name[:200]}.{secrets.token_hex(4)}.partial"
            try:
                os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
                return temporary
            except FileExistsError:
                continue
    except OSError as error:
        if error.errno not in _WRITE_ERRORS:
            raise
        raise DataError(f"cannot be written: {_WRITE_ERRORS[error.errno]}", source=str(target)) from None


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
