"""A soak client, run in a process of its own (spawned: it imports only the standard library and httpx): mixed valid
and invalid requests (JSON, CSV, multipart, small and large) against a server for a few seconds, each request's
kind, status and latency written to a JSON file."""

from __future__ import annotations

import io
import json
import random
import time
from pathlib import Path


def requests_of(rows: list[dict], large: bool) -> list[tuple[str, dict]]:
    """(kind, httpx request options) of the mix: small and invalid ones, or only large ones."""
    header = list(rows[0])
    lines = io.StringIO()
    lines.write(",".join(header) + "\n")
    for row in rows[:5]:
        cells = (json.dumps(row[name]) if isinstance(row[name], str) else str(row[name]) for name in header)
        lines.write(",".join(cells) + "\n")
    csv = lines.getvalue().encode()
    if large:
        return [("large json", {"json": {"rows": (rows * 40)[:2_000]}})]
    return [
        ("small json", {"json": {"rows": rows[:1]}}),
        ("small json", {"json": {"rows": rows[1:2]}}),
        ("ten rows json", {"json": {"rows": rows[:10]}}),
        ("small csv", {"content": csv, "headers": {"content-type": "text/csv"}}),
        ("small multipart", {"files": {"file": ("rows.csv", csv, "text/csv")}}),
        ("invalid json", {"content": b'{"rows": [{"age": "old"}]}', "headers": {"content-type": "application/json"}}),
        ("invalid json", {"json": {"rows": [{**rows[0], "age": "old"}]}}),
        ("invalid csv", {"content": b"age,city\r1,\x00\xff\n", "headers": {"content-type": "text/csv"}}),
        ("invalid multipart", {"files": [("file", ("a.csv", csv)), ("file", ("b.csv", csv))]}),
        ("invalid multipart", {"content": b"--x\r\n", "headers": {"content-type": "multipart/form-data"}}),
        ("invalid type", {"content": b"<rows/>", "headers": {"content-type": "application/xml"}}),
    ]


def soak(url: str, rows_file: str, seconds: float, large: bool, seed: int, out: str) -> None:
    """Send requests for `seconds`; write [[kind, status, seconds], …] to `out`."""
    import httpx

    rows = json.loads(Path(rows_file).read_text())
    mix = requests_of(rows, large)
    rng = random.Random(seed)
    results = []
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=url, timeout=60) as client:
        while time.monotonic() < deadline:
            kind, options = rng.choice(mix)
            started = time.perf_counter()
            status = client.post("/predict", **options).status_code
            results.append([kind, status, time.perf_counter() - started])
    Path(out).write_text(json.dumps(results))
