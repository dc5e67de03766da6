"""A real server: `deepwright serve` in a subprocess, on a free loopback port, spoken to over HTTP. Predictions,
micro-batching of concurrent requests (identical to unbatched), the access log, the token, ONNX Runtime, a port
in use, a missing or corrupt bundle, and a graceful stop."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from deepwright.deploy.predictor import Predictor
from tests.deploy.serving import Exported, LiveServer, Served, free_port, start_server
from tests.e2e.test_cli import heavy, imported_modules
from tests.helpers import TARGET, assert_user_error, run_cli


@pytest.fixture(scope="module")
def predictor(served: Served) -> Predictor:
    return Predictor.from_bundle(served.bundle)


def test_predictions_over_http(live_server: LiveServer, served: Served, predictor: Predictor) -> None:
    response = httpx.post(f"{live_server.url}/predict", json={"rows": served.rows[:1]}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": [predictor.predict(served.rows[0])]}
    many = httpx.post(f"{live_server.url}/predict", json={"rows": served.rows}, timeout=30)
    assert many.json()["predictions"] == predictor.predict(served.rows)
    page = httpx.get(f"{live_server.url}/", timeout=30)
    assert page.status_code == 200 and "<form" in page.text


def test_a_bad_field_over_http(live_server: LiveServer, served: Served) -> None:
    row = {**served.rows[0], "income": "a lot"}
    response = httpx.post(f"{live_server.url}/predict", json={"rows": [row]}, timeout=30)
    assert response.status_code == 422
    assert response.json()["error"] == "row 1, field 'income': expected a finite number, got 'a lot'"


def test_concurrent_single_rows_are_batched_and_match_unbatched(
    live_server: LiveServer, served: Served, predictor: Predictor
) -> None:
    rows = served.rows[:32]
    alone = [predictor.predict(row) for row in rows]
    before = httpx.get(f"{live_server.url}/health", timeout=30).json()

    with httpx.Client(timeout=30) as client, ThreadPoolExecutor(16) as pool:

        def predict(row: dict) -> dict:
            response = client.post(f"{live_server.url}/predict", json={"rows": [row]})
            assert response.status_code == 200, response.text
            return response.json()["predictions"][0]

        batched = list(pool.map(predict, rows))

    after = httpx.get(f"{live_server.url}/health", timeout=30).json()
    calls = after["model_calls"] - before["model_calls"]
    assert after["batched_rows"] - before["batched_rows"] == len(rows)
    assert calls < len(rows) / 2, calls  # 16 requests in flight, each waiting up to 20 ms for the others
    assert [row[f"{TARGET}_prediction"] for row in batched] == [row[f"{TARGET}_prediction"] for row in alone]
    difference = max(abs(a[f"{TARGET}_probability"] - b[f"{TARGET}_probability"]) for a, b in zip(batched, alone))
    assert difference <= 1e-6


def test_access_log_is_one_json_object_per_request(live_server: LiveServer, served: Served, tmp_path: Path) -> None:
    response = httpx.post(
        f"{live_server.url}/predict", json={"rows": served.rows[:3]}, headers={"x-request-id": "test-log-1"}, timeout=30
    )
    assert response.headers["x-request-id"] == "test-log-1"
    httpx.get(f"{live_server.url}/nowhere", headers={"x-request-id": "test-log-2"}, timeout=30)
    log = Path(live_server.stderr_path).parent / "access.log"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "test-log-2" not in log.read_text(encoding="utf-8"):
        time.sleep(0.1)
    records = {record["request_id"]: record for record in map(json.loads, log.read_text().splitlines())}
    first = records["test-log-1"]
    assert (first["method"], first["path"], first["status"], first["rows"]) == ("POST", "/predict", 200, 3)
    assert first["event"] == "request" and first["level"] == "info" and first["time"].endswith("Z")
    assert first["duration_ms"] > 0 and first["bytes_in"] > 500 and first["bytes_out"] > 50
    assert first["client"] == "127.0.0.1"
    assert records["test-log-2"]["status"] == 404
    assert "test-log-1" not in live_server.stderr()  # the access log went to its file only


def test_a_port_in_use_is_a_clear_error(live_server: LiveServer, served: Served, tmp_path: Path) -> None:
    started = time.monotonic()
    completed = run_cli("serve", "--model", served.bundle, "--port", live_server.port, cwd=tmp_path, timeout=120)
    message = assert_user_error(completed)
    assert f"port {live_server.port} on 127.0.0.1 is already in use" in message and "--port" in message
    assert time.monotonic() - started < 60
    assert httpx.get(f"{live_server.url}/health", timeout=30).status_code == 200  # the first server is unharmed


def port_is_closed(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
    except httpx.ConnectError:
        return True
    return False


# The two below run the command in-process (the `cli` fixture: the same code as the installed command, without a
# new interpreter): they end before anything listens.


def test_a_missing_bundle_does_not_start(cli, tmp_path: Path) -> None:
    port = free_port()
    completed = cli("serve", "--model", tmp_path / "nowhere", "--port", port, cwd=tmp_path)
    assert "no bundle here" in assert_user_error(completed)
    assert "serving" not in completed.stderr and port_is_closed(port)


def test_a_corrupt_bundle_does_not_start(cli, served: Served, tmp_path: Path) -> None:
    bundle = Path(shutil.copytree(served.bundle, tmp_path / "model"))
    weights = bundle / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    port = free_port()
    completed = cli("serve", "--model", bundle, "--port", port, cwd=tmp_path)
    message = assert_user_error(completed)
    assert "weights.safetensors: changed since the bundle was saved" in message
    assert port_is_closed(port)


@pytest.mark.parametrize("command", ["serve", "export"])
def test_help_imports_nothing_heavy(command: str, tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "deepwright", command, "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0 and completed.stdout.startswith(f"usage: deepwright {command}")
    modules = imported_modules(completed.stderr)
    assert heavy(modules) == set() and not {"fastapi", "uvicorn", "onnx", "onnxruntime"} & {
        module.split(".")[0] for module in modules
    }


def test_token_onnx_runtime_and_a_graceful_stop(exported: Exported, served: Served, tmp_path: Path) -> None:
    """One server for three things: the token from the environment, ONNX Runtime, and a stop that lets the
    request in flight finish (a single row waits 500 ms for company, long enough to stop the server meanwhile)."""
    server = start_server(
        exported.bundle,
        tmp_path,
        "--runtime",
        "onnx",
        "--batch-wait-ms",
        "500",
        "--no-access-log",
        env={"DEEPWRIGHT_TOKEN": "t0ken"},
    )
    try:
        url, auth = server.url, {"authorization": "Bearer t0ken"}
        assert httpx.post(f"{url}/predict", json={"rows": served.rows[:1]}, timeout=30).status_code == 401
        wrong = httpx.post(f"{url}/predict", json={"rows": served.rows[:1]}, headers={"authorization": "Bearer x"})
        assert wrong.status_code == 401 and "invalid bearer token" in wrong.json()["error"]
        assert httpx.get(f"{url}/metadata", headers=auth, timeout=30).json()["runtime"] == "onnx"
        expected = Predictor.from_bundle(served.bundle).predict(served.rows[:5])
        answer = httpx.post(f"{url}/predict", json={"rows": served.rows[:5]}, headers=auth, timeout=30).json()
        assert [row[f"{TARGET}_prediction"] for row in answer["predictions"]] == [
            row[f"{TARGET}_prediction"] for row in expected
        ]
        probabilities = [[row[f"{TARGET}_probability"] for row in rows] for rows in (answer["predictions"], expected)]
        assert np.allclose(*probabilities, atol=1e-5)

        in_flight: dict = {}

        def request() -> None:
            response = httpx.post(f"{url}/predict", json={"rows": served.rows[:1]}, headers=auth, timeout=30)
            in_flight["status"] = response.status_code

        thread = threading.Thread(target=request)
        thread.start()
        time.sleep(0.2)  # the request now waits in the inference queue
        status = server.stop()
        thread.join(30)
        assert in_flight.get("status") == 200
        assert status == 0, server.stderr()
        assert '"event": "stopped"' in server.stderr()
        assert port_is_closed(server.port)
    finally:
        server.stop()
