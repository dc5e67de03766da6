"""The sha256 fingerprint of a data source, so that a run can tell whether it is given the same data again.

A source is a file, a folder of files (class folders, text files, Parquet dataset fragments) or a glob pattern.
Files are read 1 MiB at a time, so memory stays bounded whatever their size. A folder's or a glob's digest is
the sha256 of its `sha256sum`-style listing: one `<sha256>  <relative path>\\n` line per file, sorted by path
(hidden files and folders, whose names start with '.', are left out, as the readers leave them out).

>>> import hashlib, pathlib, tempfile
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "a.txt").write_bytes(b"hello")
>>> record = fingerprint(folder / "a.txt")
>>> record["kind"], record["bytes"], record["sha256"] == hashlib.sha256(b"hello").hexdigest()
('file', 5, True)
>>> fingerprint(folder)["file_count"]
1
"""

from __future__ import annotations

import glob
import hashlib
import os
from pathlib import Path
from typing import Any

from deepwright.errors import DataError

__all__ = ["CHUNK_BYTES", "LISTED_FILES", "data_difference", "file_sha256", "fingerprint"]

CHUNK_BYTES = 1 << 20  # read this much of a file at a time
LISTED_FILES = 10_000  # a folder's files are listed one by one up to this many; its digest always covers all
_GLOB_CHARACTERS = frozenset("*?[")


def file_sha256(path: str | Path) -> str:
    """The sha256 of the file at `path` (hex), read in 1 MiB chunks.

    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "empty"
    >>> _ = path.write_bytes(b"")
    >>> file_sha256(path)[:12]
    'e3b0c44298fc'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(source: str | Path) -> dict[str, Any] | None:
    """What `source` holds, by sha256: {"kind": "file" | "folder" | "glob", "path", "sha256", "bytes",
    "file_count", "files": [{"path", "bytes", "sha256"}…]} (`files` up to `LISTED_FILES` entries, paths relative
    to the folder or the glob's fixed part). None when `source` names nothing that exists (a file that is gone, or
    an in-memory table's description such as 'the data frame')."""
    text = str(source)
    path = Path(text)
    if path.is_file():
        size = path.stat().st_size
        digest = _sha256(path)
        files = [{"path": path.name, "bytes": size, "sha256": digest}]
        return {
            "kind": "file",
            "path": str(path.resolve()),
            "sha256": digest,
            "bytes": size,
            "file_count": 1,
            "files": files,
        }
    if path.is_dir():
        return _listing("folder", str(path.resolve()), path, _folder_files(path))
    if _GLOB_CHARACTERS & set(text):
        base = _glob_base(text)
        files = sorted(Path(match) for match in glob.glob(text, recursive=True) if Path(match).is_file())
        return _listing("glob", text, base, files)
    return None


def data_difference(recorded: dict[str, Any], current: dict[str, Any]) -> str:
    """What differs between two fingerprints, in a few words: the first changed, added or removed file when both
    list their files, and the two digests.

    >>> data_difference({"sha256": "a" * 64, "files": [{"path": "x.csv", "sha256": "a" * 64}]},
    ...                 {"sha256": "b" * 64, "files": [{"path": "x.csv", "sha256": "b" * 64}]})
    'sha256 aaaaaaaaaaaa… recorded, bbbbbbbbbbbb… now (x.csv changed)'
    """
    digests = f"sha256 {recorded['sha256'][:12]}… recorded, {current['sha256'][:12]}… now"
    before = {entry["path"]: entry["sha256"] for entry in recorded.get("files") or []}
    after = {entry["path"]: entry["sha256"] for entry in current.get("files") or []}
    if not before or not after:
        return digests
    changes = [f"{name} changed" for name in sorted(before.keys() & after.keys()) if before[name] != after[name]]
    changes += [f"{name} added" for name in sorted(after.keys() - before.keys())]
    changes += [f"{name} removed" for name in sorted(before.keys() - after.keys())]
    if not changes:
        return digests
    more = f" and {len(changes) - 1} more" if len(changes) > 1 else ""
    return f"{digests} ({changes[0]}{more})"


def _sha256(path: Path) -> str:
    try:
        return file_sha256(path)
    except OSError as error:
        raise DataError(f"cannot be read ({error.strerror or error}); check the file", source=str(path)) from None


def _listing(kind: str, name: str, base: Path, files: list[Path]) -> dict[str, Any]:
    """The fingerprint of several files: each one's digest, and the digest of their sorted listing."""
    entries = sorted(((file.relative_to(base).as_posix(), file) for file in files), key=lambda pair: pair[0])
    combined, listed, total = hashlib.sha256(), [], 0
    for relative, file in entries:
        size, digest = file.stat().st_size, _sha256(file)
        combined.update(f"{digest}  {relative}\n".encode())
        total += size
        if len(listed) < LISTED_FILES:
            listed.append({"path": relative, "bytes": size, "sha256": digest})
    digest = combined.hexdigest()
    return {"kind": kind, "path": name, "sha256": digest, "bytes": total, "file_count": len(entries), "files": listed}


def _folder_files(folder: Path) -> list[Path]:
    """Every file under `folder` outside hidden files and folders."""
    files = []
    for root, folders, names in os.walk(folder, followlinks=True):
        folders[:] = [name for name in folders if not name.startswith(".")]
        files += [Path(root, name) for name in names if not name.startswith(".") and Path(root, name).is_file()]
    return files


def _glob_base(pattern: str) -> Path:
    """The folder before the first component of `pattern` holding a glob character ('data/*/x.csv' → 'data')."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts[:-1]:
        if _GLOB_CHARACTERS & set(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")
