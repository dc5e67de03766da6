"""What the distributed tests share: a small table project, the train command in a subprocess, a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import make_config, make_frame, write_config


@pytest.fixture
def table_project(tmp_path: Path) -> Path:
    """A folder with data.csv (200 rows) and config.yaml (no dropout, a global batch of 16, 3 epochs)."""
    make_frame(200).to_csv(tmp_path / "data.csv", index=False)
    write_config(tmp_path, make_config(epochs=3, batch_size=16))
    return tmp_path


def train_command(project: Path, *args: object, data: str = "data.csv") -> list[str]:
    """`python -m deepwright train` on the project's config.yaml and `data` into runs/, quietly, with `args`."""
    return [
        sys.executable,
        *("-m", "deepwright", "train", "--config", "config.yaml", "--data", data, "--output", "runs"),
        "--quiet",
        *map(str, args),
    ]


def run(
    command: list[str], cwd: Path, *, env: dict[str, str] | None = None, timeout: float = 240
) -> subprocess.CompletedProcess:
    """`command` in `cwd`, its output captured as text; `env` added to this process's environment."""
    return subprocess.run(
        command,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )


def free_port() -> int:
    """A TCP port nobody listens on at the moment."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
