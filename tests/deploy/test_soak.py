"""A bounded soak: three client processes on loopback send a mix of valid and invalid requests (JSON, CSV and
multipart; one client sends only large requests) to a real `deepwright serve` for a few seconds, after a warm-up.
No answer is a 5xx, the server's resident memory grows by at most 10 %, and the p99 latency of small requests
while large ones run is reported (and bounded)."""

from __future__ import annotations

import json
import multiprocessing
from collections import Counter
from pathlib import Path

import numpy as np

from tests.deploy.serving import LiveServer, Served
from tests.deploy.soak import soak

SECONDS = 4.0
CLIENTS = 3  # client 0 sends large requests only


def resident_bytes(pid: int) -> int:
    """The resident memory of process `pid` (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under `folder` with its size and modification time."""
    return {str(path): (path.stat().st_size, path.stat().st_mtime_ns) for path in folder.rglob("*")}


def run_clients(server: LiveServer, rows_file: Path, folder: Path, seconds: float) -> list[list]:
    """The clients' results, [kind, status, seconds] per request, from CLIENTS spawned processes at once."""
    context = multiprocessing.get_context("spawn")
    outputs = [folder / f"client-{index}.json" for index in range(CLIENTS)]
    processes = [
        context.Process(target=soak, args=(server.url, str(rows_file), seconds, index == 0, index, str(out)))
        for index, out in enumerate(outputs)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(seconds + 120)
        assert process.exitcode == 0, process.exitcode
    return [result for out in outputs for result in json.loads(out.read_text())]


def test_a_soak_of_mixed_requests_gives_no_5xx_and_flat_memory(
    live_server: LiveServer, served: Served, tmp_path: Path
) -> None:
    rows_file = tmp_path / "rows.json"
    rows_file.write_text(json.dumps(served.rows[:40]))
    bundle_before = snapshot(served.bundle)
    run_clients(live_server, rows_file, tmp_path, 1.5)  # warm-up: caches, allocator pools, first large requests
    before = resident_bytes(live_server.process.pid)
    results = run_clients(live_server, rows_file, tmp_path, SECONDS)
    after = resident_bytes(live_server.process.pid)
    statuses = Counter(status for _, status, _ in results)
    assert not [status for status in statuses if status >= 500], statuses
    kinds = Counter(kind for kind, _, _ in results)
    assert kinds["large json"] >= 2 and kinds["small json"] >= 20, kinds
    assert all(status == 200 for kind, status, _ in results if kind.startswith(("small", "ten", "large"))), statuses
    small = [seconds for kind, _, seconds in results if kind == "small json"]
    p50, p99 = np.percentile(small, 50) * 1000, np.percentile(small, 99) * 1000
    growth = after / before - 1
    print(
        f"\nsoak: {len(results)} requests in {SECONDS:g} s from {CLIENTS} processes, {dict(statuses)}; small requests "
        f"while large ones ran: p50 {p50:.1f} ms, p99 {p99:.1f} ms; resident memory {before / 2**20:.1f} -> "
        f"{after / 2**20:.1f} MB ({growth:+.1%})"
    )
    assert growth <= 0.10
    assert snapshot(served.bundle) == bundle_before  # no request wrote into the bundle
    assert p99 < 2_000  # a chunk of a large request, not the whole of one (2,000 rows), on a shared machine
