"""Fixtures for the serving tests: a model with every input type, trained once per session, and a real server
over it (a `deepwright serve` subprocess on a free loopback port) shared by the live and browser tests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.serving import (
    Exported,
    LiveServer,
    Served,
    make_served_frame,
    request_rows,
    served_config,
    start_server,
)


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    """A bundle with number, category, binary, text and image inputs (2 epochs on 60 rows). Read-only."""
    import deepwright as dp

    folder = tmp_path_factory.mktemp("served")
    frame = make_served_frame(folder / "images")
    data = folder / "people.csv"
    frame.to_csv(data, index=False)
    result = dp.Pipeline.from_config(served_config()).fit(
        data, output_dir=folder / "runs", run_name="people", progress=False
    )
    return Served(result.bundle_dir, frame, request_rows(frame))


@pytest.fixture(scope="session")
def live_server(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """`deepwright serve` over the served bundle; single rows wait up to 20 ms for others (so concurrent requests
    are batched for certain), and the access log goes to access.log in its folder."""
    folder = tmp_path_factory.mktemp("live")
    server = start_server(served.bundle, folder, "--batch-wait-ms", "20", "--access-log", str(folder / "access.log"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def exported(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Exported:
    """A copy of the served bundle inside a copy of its run directory, after `deepwright export --format onnx
    --quantize int8` (model.onnx and model.int8.onnx beside the weights); with what the command printed."""
    import contextlib
    import io

    from deepwright.cli import main

    run_dir = Path(shutil.copytree(served.bundle.parent, tmp_path_factory.mktemp("exported") / "people"))
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        status = main(["export", "--model", str(run_dir / "model"), "--format", "onnx", "--quantize", "int8"])
    assert status == 0
    return Exported(run_dir / "model", output.getvalue())
