"""Doctest collection over src/ (`--doctest-modules`): modules that need the optional `serve` extra are left out
when it is not installed, so `pytest` still runs in a core install. Any other import error fails collection."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

# The import names of the `serve` extra's packages (pyproject.toml, [project.optional-dependencies]).
SERVE_EXTRA = {
    "fastapi",
    "starlette",
    "uvicorn",
    "httptools",
    "uvloop",
    "multipart",
    "onnx",
    "onnxscript",
    "onnxruntime",
}
SRC = Path(__file__).resolve().parent


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """True for a module whose import fails only because a package of the `serve` extra is missing."""
    path = collection_path.resolve()
    if path.suffix != ".py" or path.name in ("conftest.py", "__main__.py") or SRC not in path.parents:
        return None
    parts = path.relative_to(SRC).with_suffix("").parts
    name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as error:
        if (error.name or "").partition(".")[0] in SERVE_EXTRA:
            return True
    return None
