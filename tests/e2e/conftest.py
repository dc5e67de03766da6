"""Fixtures for driving the real command line in subprocesses, as a user would."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """An empty working directory for one CLI test."""
    folder = tmp_path / "work"
    folder.mkdir()
    return folder
