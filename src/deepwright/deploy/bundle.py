"""The bundle: a directory holding everything needed to serve a raw row, and never a pickle.

    config.json          the resolved config
    preprocessing.json   every feature's fitted state (vocabularies, means, scales…)
    weights.safetensors  the model weights
    metrics.json         the metrics measured when it was saved
    plots/*.png          the run's plots, when there are any
    manifest.json        sha256 and size of each file above, and the library versions that wrote them

The directory is written under a temporary name and renamed into place; reading verifies every file against
the manifest first, so a truncated or edited bundle is refused with a `BundleError` naming the file, and a
bundle of another kind than the loader reads (`model_type`) with a `BundleError` naming the loader to use.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import platform
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepwright.errors import BundleError

__all__ = ["BUNDLE_FORMAT", "LOADERS", "Bundle", "check_model_type", "read_bundle", "write_bundle"]

BUNDLE_FORMAT = "deepwright-bundle"
_FORMAT_VERSION = 1
_REQUIRED = ("config.json", "preprocessing.json", "weights.safetensors", "metrics.json")
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
        from safetensors.torch import load_model

        try:
            load_model(model, str(self.weights_path), strict=True, device="cpu")
        except (RuntimeError, OSError, ValueError) as error:
            first = str(error).strip().splitlines()[0]
            raise BundleError(
                f"{self.weights_path}: the weights do not fit the model in config.json ({first}); save the bundle again"
            ) from None


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
                name: {"sha256": _sha256(staging / name), "bytes": (staging / name).stat().st_size} for name in files
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
    """Read and verify the bundle at `path`: every file present and matching its sha256 in the manifest; with
    `model_type`, a bundle of that model_type (else a `BundleError` naming the loader of the bundle's kind)."""
    path = Path(path)
    if not path.is_dir():
        raise BundleError(f"{path}: no bundle here; give the model directory written by 'deepwright train'")
    manifest = _read_json(path, "manifest.json")
    if manifest.get("format") != BUNDLE_FORMAT or not isinstance(manifest.get("files"), dict):
        raise BundleError(f"{path / 'manifest.json'}: not a deepwright bundle manifest")
    if manifest.get("format_version", 0) > _FORMAT_VERSION:
        raise BundleError(f"{path}: written by a newer deepwright (format {manifest['format_version']}); upgrade")
    for name in _REQUIRED:
        if name not in manifest["files"]:
            raise BundleError(f"{path / 'manifest.json'}: does not list {name}; the bundle is incomplete")
    for name, entry in manifest["files"].items():
        file = path / name
        if not file.is_file():
            raise BundleError(f"{file}: missing from the bundle; save the bundle again")
        if _sha256(file) != entry.get("sha256"):
            raise BundleError(f"{file}: changed since the bundle was saved (sha256 mismatch); save the bundle again")
    bundle = Bundle(
        path=path,
        config=_read_json(path, "config.json"),
        preprocessing=_read_json(path, "preprocessing.json"),
        metrics=_read_json(path, "metrics.json"),
        manifest=manifest,
    )
    if model_type is not None:
        check_model_type(bundle, model_type)
    return bundle


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


def _read_json(path: Path, name: str) -> Any:
    file = path / name
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{file}: missing; this is not a complete deepwright bundle") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BundleError(f"{file}: cannot be read as JSON ({error})") from None


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with open(file, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
