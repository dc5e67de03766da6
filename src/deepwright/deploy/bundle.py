"""The bundle: a directory holding everything needed to serve a raw row, and never a pickle.

    config.json          the resolved config
    preprocessing.json   every feature's fitted state (vocabularies, means, scales…)
    weights.safetensors  the model weights
    metrics.json         the metrics measured when it was saved
    plots/*.png          the run's plots, when there are any
    manifest.json        sha256 and size of each file above, and the library versions that wrote them

The directory is written under a temporary name and renamed into place; reading verifies every file against
the manifest first, so a truncated or edited bundle is refused with a `BundleError` naming the file, and a
bundle of another kind than the loader reads (`model_type`) with a `BundleError` naming the loader to use. A
manifest entry must name a file inside the bundle (no `..`, no absolute path, no link leading out), and the
model a config describes is sized before it is built (`Bundle.build_model`): a config that asks for more weights
than the weights file holds is refused before anything is allocated. Files written into a bundle later (the
ONNX graphs of `deepwright export`) enter its manifest (`record_file`) and are verified like the others.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from deepwright.data.fingerprint import file_sha256
from deepwright.errors import BundleError, DeepwrightError

__all__ = ["BUNDLE_FORMAT", "LOADERS", "Bundle", "check_model_type", "read_bundle", "record_file", "write_bundle"]

BUNDLE_FORMAT = "deepwright-bundle"
_FORMAT_VERSION = 1
_REQUIRED = ("config.json", "preprocessing.json", "weights.safetensors", "metrics.json")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SLACK_BYTES = 1 << 20  # what a model's parameters may exceed the weights file by (its header, shared tensors)
LOADERS = {  # what loads a bundle of each model_type
    "ecd": "Predictor.from_bundle",
    "forecast": "Forecaster.from_bundle",
    "lm": "TextGenerator.from_bundle",
}


@dataclass
class Bundle:
    """A verified bundle's JSON contents and the path of its weights."""

    path: Path
    config: dict[str, Any]
    preprocessing: dict[str, Any]
    metrics: dict[str, Any]
    manifest: dict[str, Any]

    @property
    def weights_path(self) -> Path:
        """The safetensors file of the weights."""
        return self.path / "weights.safetensors"

    def load_weights(self, model: Any) -> None:
        """Load the weights into `model` (built from this bundle's config and preprocessing)."""
        from safetensors import SafetensorError
        from safetensors.torch import load_model

        try:
            load_model(model, str(self.weights_path), strict=True, device="cpu")
        except SafetensorError as error:
            raise BundleError(
                f"{self.weights_path}: not a safetensors file ({_first_line(error)}); save the bundle again"
            ) from None
        except (RuntimeError, OSError, ValueError) as error:
            raise BundleError(
                f"{self.weights_path}: the weights do not fit the model in config.json ({_first_line(error)}); "
                "save the bundle again"
            ) from None

    def load_config(self) -> Any:
        """The bundle's config, validated (a `BundleError` naming config.json when it is not a valid config)."""
        from deepwright.config import load_config

        try:
            return load_config(self.config)
        except DeepwrightError as error:
            where = self.path / "config.json"
            raise BundleError(f"{where}: not a valid config ({error}); save the bundle again") from None

    def build_model(self, build: Callable[[], Any]) -> Any:
        """`build()` (the model this bundle's config and preprocessing describe), once its size is known to fit:
        it is first built on PyTorch's meta device (shapes, no memory), and refused with a `BundleError` when its
        parameters need more bytes than weights.safetensors holds, or its tensors more than this machine's
        memory. A config that no longer matches the preprocessing is refused naming both files."""
        import torch

        files = ("config.json", "preprocessing.json")
        try:
            with torch.device("meta"):
                shape = build()
        except DeepwrightError as error:
            raise BundleError(f"{self.path}: {' and '.join(files)} do not describe a model ({error})") from None
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as error:
            raise BundleError(
                f"{self.path / 'config.json'}: does not match {files[1]} ({type(error).__name__}: "
                f"{_first_line(error)}); save the bundle again"
            ) from None
        parameters = sum(p.numel() * p.element_size() for p in shape.parameters())
        tensors = parameters + sum(b.numel() * b.element_size() for b in shape.buffers())
        stored = self.weights_path.stat().st_size
        if parameters > stored + _SLACK_BYTES:
            raise BundleError(
                f"{self.path / 'config.json'}: describes a model of {parameters:,} bytes of parameters, but "
                f"weights.safetensors holds {stored:,} bytes; the config does not match the weights"
            )
        memory = _memory_bytes()
        if memory is not None and tensors > memory:
            raise BundleError(
                f"{self.path / 'config.json'}: describes a model of {tensors:,} bytes, more than this machine's "
                f"{memory:,} bytes of memory"
            )
        return build()


def write_bundle(
    path: str | Path,
    *,
    config: dict[str, Any],
    preprocessing: dict[str, Any],
    model: Any,
    metrics: dict[str, Any],
    plots: list[Path] = (),
) -> Path:
    """Write a bundle directory at `path` (replacing an older bundle there) and return its path."""
    from safetensors.torch import save_model

    path = Path(path)
    if path.exists() and not (path / "manifest.json").is_file() and any(path.iterdir()):
        raise BundleError(f"{path}: exists and is not a deepwright bundle; choose another path or empty it")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    try:
        for name, data in (
            ("config.json", config),
            ("preprocessing.json", preprocessing),
            ("metrics.json", metrics),
        ):
            (staging / name).write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
        save_model(model, str(staging / "weights.safetensors"), metadata={"format": BUNDLE_FORMAT})
        for plot in plots:
            (staging / "plots").mkdir(exist_ok=True)
            shutil.copyfile(plot, staging / "plots" / Path(plot).name)
        files = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())
        manifest = {
            "format": BUNDLE_FORMAT,
            "format_version": _FORMAT_VERSION,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "versions": _versions(),
            "files": {
                name: {"sha256": file_sha256(staging / name), "bytes": (staging / name).stat().st_size}
                for name in files
            },
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if path.exists():
            retired = path.with_name(f".{path.name}.old")
            shutil.rmtree(retired, ignore_errors=True)
            path.rename(retired)
            staging.rename(path)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            staging.rename(path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path


def read_bundle(path: str | Path, *, model_type: str | None = None) -> Bundle:
    """Read and verify the bundle at `path`: every file present, inside the bundle, and matching its sha256 in
    the manifest; with `model_type`, a bundle of that model_type (else a `BundleError` naming the
    loader of the bundle's kind)."""
    path = Path(path)
    if not path.is_dir():
        raise BundleError(f"{path}: no bundle here; give the model directory written by 'deepwright train'")
    manifest = _read_object(path, "manifest.json")
    if manifest.get("format") != BUNDLE_FORMAT or not isinstance(manifest.get("files"), dict):
        raise BundleError(f"{path / 'manifest.json'}: not a deepwright bundle manifest")
    version = manifest.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise BundleError(f"{path / 'manifest.json'}: format_version is not a whole number")
    if version > _FORMAT_VERSION:
        raise BundleError(f"{path}: written by a newer deepwright (format {version}); upgrade")
    for name in _REQUIRED:
        if name not in manifest["files"]:
            raise BundleError(f"{path / 'manifest.json'}: does not list {name}; the bundle is incomplete")
    root = path.resolve()
    for name, entry in manifest["files"].items():
        file = _member(path, root, name, entry)
        if not file.is_file():
            raise BundleError(f"{file}: missing from the bundle; save the bundle again")
        if file_sha256(file) != entry["sha256"]:
            raise BundleError(f"{file}: changed since the bundle was saved (sha256 mismatch); save the bundle again")
    bundle = Bundle(
        path=path,
        config=_read_object(path, "config.json"),
        preprocessing=_read_object(path, "preprocessing.json"),
        metrics=_read_object(path, "metrics.json"),
        manifest=manifest,
    )
    if model_type is not None:
        check_model_type(bundle, model_type)
    return bundle


def record_file(file: str | Path) -> bool:
    """Enter `file` (just written into a bundle's folder, such as `model.onnx`) in that bundle's manifest, so
    that it is verified on every load; return False, changing nothing, when its folder holds no bundle."""
    from deepwright.data.io import atomic_path

    file = Path(file)
    folder = file.parent
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        return False
    manifest.setdefault("files", {})[file.name] = {"sha256": file_sha256(file), "bytes": file.stat().st_size}
    with atomic_path(folder / "manifest.json") as temporary:
        temporary.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return True


def _member(path: Path, root: Path, name: Any, entry: Any) -> Path:
    """The file a manifest entry names, refused (`BundleError`) unless the entry is well formed and the file
    lies inside the bundle (a relative path without '..', no link leading out)."""
    where = path / "manifest.json"
    if (
        not isinstance(entry, dict)
        or not isinstance(entry.get("sha256"), str)
        or not _SHA256.fullmatch(entry["sha256"])
    ):
        raise BundleError(f"{where}: the entry of {name!r} has no sha256; save the bundle again")
    size = entry.get("bytes")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise BundleError(f"{where}: the entry of {name!r} has no size in bytes; save the bundle again")
    parts = PurePosixPath(name).parts
    if not parts or "\\" in name or "\0" in name or name.startswith("/") or ".." in parts or ":" in parts[0]:
        raise BundleError(f"{where}: lists {name!r}, a path outside the bundle; the manifest was tampered with")
    file = path / name
    if not file.resolve().is_relative_to(root):
        raise BundleError(f"{file}: leads outside the bundle (a link); the bundle was tampered with")
    return file


def check_model_type(bundle: Bundle, expected: str) -> None:
    """Refuse (`BundleError`) a bundle whose config's model_type is not `expected`, naming the loader to use.

    >>> check_model_type(Bundle(Path("poem"), {"model_type": "lm"}, {}, {}, {}), "ecd")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    deepwright.errors.BundleError: poem: a bundle of model_type 'lm', not 'ecd'; load it with ...
    """
    actual = bundle.config.get("model_type", "ecd")
    if actual == expected:
        return
    loader = LOADERS.get(actual)
    advice = f"load it with {loader} (or deepwright.load, which reads every kind)" if loader else "upgrade deepwright"
    raise BundleError(f"{bundle.path}: a bundle of model_type {actual!r}, not {expected!r}; {advice}")


def _read_object(path: Path, name: str) -> dict[str, Any]:
    """The JSON object in the bundle's file `name` (a `BundleError` naming it when it is missing, unreadable,
    a link leading out of the bundle, or JSON of another kind than an object)."""
    file = path / name
    if file.is_symlink() and not file.resolve().is_relative_to(path.resolve()):
        raise BundleError(f"{file}: leads outside the bundle (a link); the bundle was tampered with")
    try:
        value = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{file}: missing; this is not a complete deepwright bundle") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise BundleError(f"{file}: cannot be read as JSON ({error})") from None
    if not isinstance(value, dict):
        raise BundleError(f"{file}: holds a JSON {type(value).__name__}, not an object; save the bundle again")
    return value


def _first_line(error: BaseException) -> str:
    """The first line of an error's message (a library's may run over many)."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _memory_bytes() -> int | None:
    """This machine's physical memory, when the system says."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _versions() -> dict[str, str]:
    import numpy
    import torch

    from deepwright.version import __version__

    return {
        "deepwright": __version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }
