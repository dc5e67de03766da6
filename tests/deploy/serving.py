"""Helpers for the serving tests: a small model with every input type, inline images, and real servers started
as `deepwright serve` subprocesses on free loopback ports."""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tests.helpers import TARGET, make_config, make_frame
from tests.images import write_image

# Every input type a model can have today: numbers, a category, a binary, a text, an image.
ALL_INPUTS = [
    {"name": "review", "type": "text", "tokenizer": {"min_count": 1}},
    {"name": "photo", "type": "image", "encoder": {"dims": [4]}},
]


def make_served_frame(folder: Path, rows: int = 60, seed: int = 0) -> pd.DataFrame:
    """`make_frame` plus a text column and an image column (8×8 grey PNGs written into `folder`)."""
    frame = make_frame(rows, seed=seed)
    rng = np.random.default_rng(seed)
    words = np.array(["great", "good", "fine", "bad", "poor", "awful", "ok"])
    frame.insert(4, "review", [" ".join(rng.choice(words, rng.integers(1, 5))) for _ in range(rows)])
    folder.mkdir(parents=True, exist_ok=True)
    frame.insert(5, "photo", [str(write_image(folder / f"{seed}-{i}.png", seed=seed * 1000 + i)) for i in range(rows)])
    return frame


def served_config(epochs: int = 2) -> dict[str, Any]:
    """The config of the served model: every input type → a binary label."""
    config = make_config(epochs=epochs, checkpoint=False)
    config["input_features"] += [dict(feature) for feature in ALL_INPUTS]
    return config


def data_url(path: str | Path) -> str:
    """An image file as a `data:` URL, as a request sends it."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def request_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The input rows of `frame` as JSON request rows (images inline)."""
    rows = frame.drop(columns=[TARGET]).to_dict("records")
    for row in rows:
        row["photo"] = data_url(row["photo"])
    return rows


@dataclass
class Served:
    """The served model's bundle (read-only), the table it was trained on, and request rows."""

    bundle: Path
    frame: pd.DataFrame
    rows: list[dict[str, Any]]


@dataclass
class Exported:
    """A bundle (in a copy of its run directory) with model.onnx and model.int8.onnx, and what export printed."""

    bundle: Path
    report: str


def free_port() -> int:
    """A loopback port free at the time of the call."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveServer:
    """A `deepwright serve` subprocess and where it answers."""

    process: subprocess.Popen
    url: str
    port: int
    stderr_path: Path

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then wait for the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def stderr(self) -> str:
        """What the server wrote to standard error so far."""
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")


def start_server(bundle: Path, folder: Path, *args: str, env: dict[str, str] | None = None) -> LiveServer:
    """Start `deepwright serve --model bundle ARGS…` on a free port; wait until /health answers."""
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    stderr_path = folder / f"server-{port}.err"
    command = [sys.executable, "-m", "deepwright", "serve", "--model", str(bundle), "--port", str(port), *args]
    with open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(
            command, cwd=folder, stdout=subprocess.DEVNULL, stderr=stderr, env={**os.environ, **(env or {})}
        )
    server = LiveServer(process, f"http://127.0.0.1:{port}", port, stderr_path)
    wait_until_ready(server)
    return server


def wait_until_ready(server: LiveServer, timeout: float = 120) -> None:
    """Poll /health until it answers 200; fail with the server's stderr if it exits or never answers."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"the server exited with {server.process.returncode}:\n{server.stderr()}")
        try:
            if httpx.get(f"{server.url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.stop()
    raise AssertionError(f"the server did not answer within {timeout} s:\n{server.stderr()}")


@contextlib.contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """Run `app` with uvicorn on a free loopback port in a thread of this process; yield its URL, then stop it."""
    import threading

    import uvicorn

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise AssertionError("the in-thread server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
