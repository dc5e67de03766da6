"""Serving under load: `deepwright serve` on loopback, driven by a load generator in a separate process, for the
PyTorch and the ONNX Runtime runtimes of the quickstart bundle; then a soak of mixed valid and invalid requests.

The bundle is the quickstart's (`deepwright quickstart`: breast_cancer, 30 numbers → binary), exported once with
`deepwright export --format onnx`. For each runtime the script starts `deepwright serve --model B --runtime R
--threads T` on a free loopback port (access log on, to a file), waits for /health, and runs the load generator
(this script with `--client`, a separate process: raw HTTP/1.1 keep-alive connections over asyncio, so the client
costs little of the two CPUs) through these phases, each after `--warmup` unmeasured requests:

- latency:     single-row requests one after another on one connection → p50 / p99 latency;
- throughput:  single-row requests on 16 connections at once → requests/s, and p50 / p99 under that load;
- batch:       1,000-row requests on one connection → rows/s;

and, on the PyTorch server, a soak: `--soak` requests (default 20,000) on 16 connections, mixing valid single
rows, valid 10-row requests and CSV uploads with invalid ones (wrong type, missing field, unknown field, broken
JSON, an unsupported content type, a bad query); it counts statuses (goal: no 5xx) and compares the server's
resident memory after the soak with that before it (after a warm-up of the same mix; goal: ≤ 10% growth). Each
server is then stopped with SIGTERM and must exit with status 0.

Each phase also reports the server's CPU milliseconds per request (from /proc), which holds on a busy machine
where the wall-clock rates fall with the share of the CPUs other processes take. In-process, it also times the
tensor part alone for one row (`predictor.runtime(arrays)`: eager PyTorch against
ONNX Runtime, 2,000 calls each) — the goal "ONNX Runtime batch-1 latency ≤ 0.5× eager PyTorch" is about that call.

For comparison (not run here): Ludwig's `ludwig serve` answers one row in ≈ 34 ms p50 on these machines.
Goals on 2 cores: single-row p50 ≤ 3 ms; ≥ 1,000 single-row requests/s at concurrency 16; ≥ 50,000 rows/s in
1,000-row requests; ONNX batch-1 latency ≤ 0.5× eager PyTorch; soak: zero 5xx, RSS growth ≤ 10%.

    .venv/bin/python benchmarks/serve_load.py [--requests 2000] [--soak 20000] [--bundle runs/x/model]
    .venv/bin/python benchmarks/serve_load.py --requests 200 --soak 1000 --bundle B   # a shorter check
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    PYTHON,
    base_parser,
    deepwright_command,
    emit,
    environment,
    log,
    measured,
    percentile,
    ratio,
    run_timed,
    wait_for_quiet_cpu,
)

GOALS = {
    "single_row_p50_ms": 3.0,
    "requests_per_second_at_16": 1000.0,
    "rows_per_second_in_1000_row_requests": 50_000.0,
    "onnx_over_torch_batch1": 0.5,
    "soak_5xx": 0,
    "soak_rss_growth": 0.10,
}
LUDWIG_SERVE_P50_MS = 34.0  # `ludwig serve`, one row, measured on these machines (quoted, not run here)
CONCURRENCY = 16
BATCH_ROWS = 1000


# -- the load generator (runs in its own process) ----------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection: send a prepared request, read the status and body."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def send(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        body = await self.reader.readexactly(length) if length else b""
        return status, body

    def close(self) -> None:
        self.writer.close()


def http_request(path: str, body: bytes, content_type: str = "application/json") -> bytes:
    """A POST request as bytes, ready to send on a keep-alive connection."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def run_requests(port: int, requests: list[bytes], connections: int) -> dict[str, Any]:
    """Send `requests` over `connections` connections at once; latencies (ms), statuses and wall seconds."""
    queue = list(reversed(requests))
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def worker() -> None:
        connection = await Connection.open(port)
        try:
            while queue:
                request = queue.pop()
                started = time.perf_counter()
                status, _ = await connection.send(request)
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return {"latencies": latencies, "statuses": statuses, "seconds": time.perf_counter() - started}


def summary(result: dict[str, Any], rows_per_request: int = 1) -> dict[str, Any]:
    latencies, seconds = result["latencies"], result["seconds"]
    return {
        "requests": len(latencies),
        "p50_ms": round(percentile(latencies, 0.5), 3),
        "p99_ms": round(percentile(latencies, 0.99), 3),
        "requests_per_second": round(len(latencies) / seconds, 1),
        "rows_per_second": round(len(latencies) * rows_per_request / seconds, 1),
        "statuses": {str(status): count for status, count in sorted(result["statuses"].items())},
    }


def soak_requests(rows: list[dict[str, Any]], count: int, seed: int) -> tuple[list[bytes], dict[str, int]]:
    """`count` requests mixing valid and invalid ones (see the module docstring), and how many of each kind."""
    rng = random.Random(seed)
    names = list(rows[0])
    csv_header = ",".join(f'"{name}"' for name in names)

    def valid_row() -> dict[str, Any]:
        return dict(rng.choice(rows))

    def csv_body() -> bytes:
        lines = [csv_header] + [",".join(str(value) for value in valid_row().values()) for _ in range(5)]
        return ("\n".join(lines) + "\n").encode()

    kinds = {
        "valid_one_row": (40, lambda: http_request("/predict", json.dumps({"rows": [valid_row()]}).encode())),
        "valid_ten_rows": (
            10,
            lambda: http_request("/predict", json.dumps({"rows": [valid_row() for _ in range(10)]}).encode()),
        ),
        "valid_csv": (5, lambda: http_request("/predict", csv_body(), "text/csv")),
        "wrong_type": (
            10,
            lambda: http_request("/predict", json.dumps({"rows": [{**valid_row(), names[0]: "abc"}]}).encode()),
        ),
        "missing_field": (
            10,
            lambda: http_request(
                "/predict", json.dumps({"rows": [{k: v for k, v in valid_row().items() if k != names[1]}]}).encode()
            ),
        ),
        "unknown_field": (
            5,
            lambda: http_request("/predict", json.dumps({"rows": [{**valid_row(), "nonsense": 1}]}).encode()),
        ),
        "broken_json": (10, lambda: http_request("/predict", b'{"rows": [{"' + names[2].encode() + b'": 1,')),
        "unsupported_type": (5, lambda: http_request("/predict", b"<rows/>", "application/xml")),
        "bad_query": (5, lambda: http_request("/predict?format=yaml", json.dumps({"rows": [valid_row()]}).encode())),
    }
    weights = [weight for weight, _ in kinds.values()]
    chosen = rng.choices(list(kinds), weights=weights, k=count)
    counts = {kind: chosen.count(kind) for kind in kinds}
    return [kinds[kind][1]() for kind in chosen], counts


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far, from /proc."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure_phase(
    port: int, pid: int, requests: list[bytes], connections: int, rows_per_request: int = 1
) -> dict[str, Any]:
    """A phase's summary, with the server's CPU milliseconds per request: a figure that holds on a busy machine,
    where wall-clock rates fall with the share of the CPUs other processes take."""
    before = cpu_seconds(pid)
    result = summary(await run_requests(port, requests, connections), rows_per_request)
    result["server_cpu_ms_per_request"] = round((cpu_seconds(pid) - before) * 1000 / len(requests), 3)
    return result


def rss_bytes(pid: int) -> int:
    """Resident memory of a process, from /proc."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


async def client_main(arguments: dict[str, Any]) -> dict[str, Any]:
    """The load generator: the phases the parent asks for, on the server at `port`."""
    port, rows, pid = arguments["port"], arguments["rows"], arguments["server_pid"]
    count, warmup = arguments["requests"], arguments["warmup"]
    one = [http_request("/predict", json.dumps({"rows": [row]}).encode()) for row in rows]
    singles = [one[index % len(one)] for index in range(count)]
    batch_body = json.dumps({"rows": [rows[index % len(rows)] for index in range(BATCH_ROWS)]}).encode()
    batches = [http_request("/predict", batch_body)] * max(10, count // 20)
    results: dict[str, Any] = {}
    for phase in arguments["phases"]:
        if phase == "latency":
            await run_requests(port, singles[:warmup], 1)
            results[phase] = await measure_phase(port, pid, singles, 1)
        elif phase == "throughput":
            await run_requests(port, singles[:warmup], CONCURRENCY)
            results[phase] = await measure_phase(port, pid, singles, CONCURRENCY)
        elif phase == "batch":
            await run_requests(port, batches[:3], 1)
            results[phase] = await measure_phase(port, pid, batches, 1, BATCH_ROWS)
        elif phase == "soak":
            warm, _ = soak_requests(rows, min(2000, arguments["soak"]), seed=1)
            await run_requests(port, warm, CONCURRENCY)
            before = rss_bytes(pid)
            requests, kinds = soak_requests(rows, arguments["soak"], seed=2)
            outcome = await run_requests(port, requests, CONCURRENCY)
            after = rss_bytes(pid)
            results[phase] = {
                **summary(outcome),
                "kinds": kinds,
                "server_5xx": sum(count for status, count in outcome["statuses"].items() if status >= 500),
                "rss_before_mb": round(before / 2**20, 1),
                "rss_after_mb": round(after / 2**20, 1),
                "rss_growth": round(after / before - 1, 4) if before else None,
            }
    return results


# -- the parent: bundle, servers, measurements -------------------------------------------------------------


def quickstart_bundle(folder: Path) -> Path:
    """`deepwright quickstart` into `folder`; its bundle."""
    run_timed([*deepwright_command(), "quickstart", "--output", str(folder)])
    return folder / "runs" / "breast_cancer" / "model"


def input_rows(bundle: Path, limit: int = 200) -> list[dict[str, Any]]:
    """Raw input rows of the bundle's own data (the run's data file), as JSON-ready dicts."""
    import pandas as pd

    run = json.loads((bundle.parent / "run.json").read_text(encoding="utf-8"))
    config = json.loads((bundle / "config.json").read_text(encoding="utf-8"))
    names = [feature["name"] for feature in config["input_features"]]
    frame = pd.read_csv(run["data"], nrows=limit)[names]
    return json.loads(frame.to_json(orient="records"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(bundle: Path, runtime: str, threads: int, log_path: Path) -> tuple[subprocess.Popen, int]:
    """`deepwright serve` on a free port, its access log to `log_path`; returns once /health answers."""
    import urllib.request

    port = free_port()
    command = [
        *deepwright_command(),
        "serve",
        "--model",
        str(bundle),
        "--port",
        str(port),
        "--runtime",
        runtime,
        "--threads",
        str(threads),
        "--access-log",
        str(log_path),
    ]
    with open(log_path.with_suffix(".err"), "wb") as errors:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"error: the {runtime} server exited: {log_path.with_suffix('.err').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
                if answer.status == 200:
                    return process, port
        except OSError:
            time.sleep(0.2)
    process.kill()
    sys.exit(f"error: the {runtime} server did not answer within 180 s")


def run_client(arguments: dict[str, Any]) -> dict[str, Any]:
    """The load generator in a separate process."""
    completed = subprocess.run(
        [PYTHON, str(Path(__file__).resolve()), "--client"],
        input=json.dumps(arguments),
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        sys.exit(f"error: the load generator failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def tensor_part_latency(bundle: Path, rows: list[dict[str, Any]], calls: int = 2000) -> dict[str, Any]:
    """Median and p99 microseconds of the tensor part for one row: eager PyTorch against ONNX Runtime."""
    import torch

    from deepwright.deploy.predictor import Predictor

    torch.set_num_threads(1)
    results = {}
    for runtime in ("torch", "onnx"):
        predictor = Predictor.from_bundle(bundle, runtime=runtime)
        columns = predictor.record_columns(rows[:1])
        arrays = predictor.features.transform_inputs(columns[0], row_numbers=columns[1], source=columns[2])
        for _ in range(200):
            predictor.runtime(arrays)
        times = []
        for _ in range(calls):
            started = time.perf_counter()
            predictor.runtime(arrays)
            times.append((time.perf_counter() - started) * 1e6)
        results[runtime] = {"p50_us": round(percentile(times, 0.5), 1), "p99_us": round(percentile(times, 0.99), 1)}
    results["onnx_over_torch_p50"] = ratio(results["onnx"]["p50_us"], results["torch"]["p50_us"])
    return results


def serve_and_measure(
    bundle: Path, runtime: str, args: argparse.Namespace, rows: list[dict[str, Any]], folder: Path
) -> dict[str, Any]:
    phases = ["latency", "throughput", "batch"] + (["soak"] if runtime == "torch" and args.soak else [])
    process, port = start_server(bundle, runtime, args.threads, folder / f"access-{runtime}.log")
    try:
        wait_for_quiet_cpu(timeout_s=args.wait_quiet)
        arguments = {
            "port": port,
            "rows": rows,
            "requests": args.requests,
            "warmup": args.warmup,
            "soak": args.soak,
            "phases": phases,
            "server_pid": process.pid,
        }
        result = measured(lambda: run_client(arguments))
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            status = process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            status = "killed after 60 s"
    result["server_exit_status"] = status
    log(
        f"{runtime}: p50 {result['latency']['p50_ms']} ms, {result['throughput']['requests_per_second']:,} req/s "
        f"at {CONCURRENCY} ({result['throughput']['server_cpu_ms_per_request']} server CPU ms each), "
        f"{result['batch']['rows_per_second']:,} rows/s in {BATCH_ROWS}-row requests "
        f"(others' CPU share {result['others_cpu_share']:.0%})"
    )
    return result


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0], repeats=None)
    parser.add_argument("--requests", type=int, default=2000, help="single-row requests per phase (default: 2000)")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured requests before each phase")
    parser.add_argument("--soak", type=int, default=20_000, help="requests of the soak (0: none; default: 20000)")
    parser.add_argument("--threads", type=int, default=1, help="the server's model threads (default: 1)")
    parser.add_argument("--bundle", type=Path, help="a quickstart bundle to reuse (default: run the quickstart)")
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)  # the load generator; JSON on stdin
    args = parser.parse_args()
    if args.client:
        print(json.dumps(asyncio.run(client_main(json.load(sys.stdin)))))
        return

    with tempfile.TemporaryDirectory(prefix="dw-serve-load-") as temporary:
        folder = Path(temporary)
        if args.bundle:
            bundle = Path(folder / "model")
            import shutil

            shutil.copytree(args.bundle, bundle)
            (folder / "run.json").write_bytes((args.bundle.parent / "run.json").read_bytes())
        else:
            log("training the quickstart bundle (deepwright quickstart)")
            bundle = quickstart_bundle(folder / "quickstart")
        log("exporting it to ONNX (deepwright export --format onnx --quantize int8)")
        _, export_output = run_timed([*deepwright_command(), "export", "--model", str(bundle), "--quantize", "int8"])
        rows = input_rows(bundle)
        runtimes = {runtime: serve_and_measure(bundle, runtime, args, rows, folder) for runtime in ("torch", "onnx")}
        log("timing the tensor part alone, in process")
        tensor = tensor_part_latency(bundle, rows)

    torch_result, onnx_result = runtimes["torch"], runtimes["onnx"]
    soak = torch_result.get("soak")
    achieved = {
        "single_row_p50_ms": {name: result["latency"]["p50_ms"] for name, result in runtimes.items()},
        "requests_per_second_at_16": {
            name: result["throughput"]["requests_per_second"] for name, result in runtimes.items()
        },
        "rows_per_second_in_1000_row_requests": {
            name: result["batch"]["rows_per_second"] for name, result in runtimes.items()
        },
        "server_cpu_ms_per_request": {
            name: {phase: result[phase]["server_cpu_ms_per_request"] for phase in ("latency", "throughput", "batch")}
            for name, result in runtimes.items()
        },
        "onnx_over_torch_batch1": {
            "tensor_part": tensor["onnx_over_torch_p50"],
            "http_single_row_p50": ratio(onnx_result["latency"]["p50_ms"], torch_result["latency"]["p50_ms"]),
        },
    }
    goal_met = {
        "single_row_p50_ms": all(
            value <= GOALS["single_row_p50_ms"] for value in achieved["single_row_p50_ms"].values()
        ),
        "requests_per_second_at_16": all(
            value >= GOALS["requests_per_second_at_16"] for value in achieved["requests_per_second_at_16"].values()
        ),
        "rows_per_second_in_1000_row_requests": all(
            value >= GOALS["rows_per_second_in_1000_row_requests"]
            for value in achieved["rows_per_second_in_1000_row_requests"].values()
        ),
        "onnx_over_torch_batch1": tensor["onnx_over_torch_p50"] <= GOALS["onnx_over_torch_batch1"],
    }
    if soak:
        goal_met["soak_5xx"] = soak["server_5xx"] == 0
        goal_met["soak_rss_growth"] = soak["rss_growth"] is not None and soak["rss_growth"] <= GOALS["soak_rss_growth"]
    emit(
        {
            "benchmark": "serve_load",
            "compares": f"deepwright serve (torch and onnx runtimes) on the quickstart bundle; Ludwig's `ludwig serve` "
            f"one-row p50 ≈ {LUDWIG_SERVE_P50_MS} ms on these machines (quoted, not run)",
            "goals": GOALS,
            "achieved": achieved,
            "goal_met": goal_met,
            "ratio_torch_p50_vs_ludwig": ratio(torch_result["latency"]["p50_ms"], LUDWIG_SERVE_P50_MS),
            "runtimes": runtimes,
            "tensor_part_one_row": tensor,
            "export": export_output.strip().splitlines(),
            "settings": {
                "requests": args.requests,
                "warmup": args.warmup,
                "soak": args.soak,
                "server_threads": args.threads,
                "concurrency": CONCURRENCY,
                "batch_rows": BATCH_ROWS,
                "batch_wait_ms": 0.0,
            },
            "environment": environment(),
        }
    )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
