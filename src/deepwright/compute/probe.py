"""A short measurement of this machine (about a second): the matmul FLOP/s, the memory bandwidth, and the time one
small operation takes to dispatch, on the CPU at the thread count in use, or on a CUDA device.

Measured once per machine and kept in `~/.cache/deepwright/probe.json` (`probe_cache_path`), keyed by the CPU model
(or GPU name), the thread count and the torch version; `machine_probe(reprobe=True)` measures again. The figures are
best-of-several timings, so a busy moment lowers them less than an average would.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

__all__ = ["MachineProbe", "machine_probe", "probe_cache_path", "probe_key"]

MATMUL_SIZE = {"cpu": 1024, "cuda": 8192}  # square fp32 matrices: big enough to run near the peak
COPY_BYTES = {"cpu": 64 * 2**20, "cuda": 1024 * 2**20}
SECONDS_PER_FIGURE = 0.3
VERSION = 2  # of what is measured and how: a cache entry of another version is measured again


@dataclass(frozen=True)
class MachineProbe:
    """What `machine_probe` measured: FLOP/s of fp32 matmuls (and bf16 where bf16 kernels are fast) and of a 3×3
    convolution, bytes/s of a large copy (read + write), and seconds per small dispatched operation."""

    key: str
    matmul_flops: float
    bf16_matmul_flops: float | None
    convolution_flops: float
    bandwidth: float
    op_seconds: float
    measured: str  # when, UTC

    def peak(self, precision: str = "fp32") -> float:
        """The matmul FLOP/s at `precision` (bf16 falls back to fp32 where it was not measured)."""
        if precision == "bf16" and self.bf16_matmul_flops:
            return self.bf16_matmul_flops
        return self.matmul_flops


def probe_cache_path() -> Path:
    """`~/.cache/deepwright/probe.json` (under `$XDG_CACHE_HOME` when set)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "deepwright" / "probe.json"


def probe_key(device: torch.device | str = "cpu") -> str:
    """What the probe's figures depend on: the CPU model and thread count (or the GPU's name), and torch's version."""
    device = torch.device(device)
    versions = f"torch {torch.__version__} | probe {VERSION}"
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} | {versions}"
    return f"{_cpu_model()} | {torch.get_num_threads()} threads | {versions}"


def machine_probe(
    device: torch.device | str = "cpu", *, reprobe: bool = False, cache: Path | None = None
) -> MachineProbe:
    """The probe of `device` at the current thread count: from the cache when it holds this machine's key (and
    `reprobe` is False), else measured now and written to the cache (an unwritable cache is skipped)."""
    device = torch.device(device)
    path = cache or probe_cache_path()
    key = probe_key(device)
    entries = _read_cache(path)
    if not reprobe and key in entries:
        try:
            return MachineProbe(**entries[key])
        except TypeError:
            pass  # written by another version: measure again
    probe = _measure(device, key)
    entries[key] = asdict(probe)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(entries, indent=1), encoding="utf-8")
        temporary.replace(path)
    except OSError:
        pass
    return probe


def _read_cache(path: Path) -> dict[str, dict]:
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return entries if isinstance(entries, dict) else {}


def _measure(device: torch.device, key: str) -> MachineProbe:
    bf16_fast = device.type == "cuda" or bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return MachineProbe(
        key=key,
        matmul_flops=_matmul_flops(device, torch.float32),
        bf16_matmul_flops=_matmul_flops(device, torch.bfloat16) if bf16_fast else None,
        convolution_flops=_convolution_flops(device),
        bandwidth=_bandwidth(device),
        op_seconds=_op_seconds(device),
        measured=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )


def _matmul_flops(device: torch.device, dtype: torch.dtype) -> float:
    size = MATMUL_SIZE[device.type if device.type in MATMUL_SIZE else "cpu"]
    left = torch.randn(size, size, device=device, dtype=dtype)
    right = torch.randn(size, size, device=device, dtype=dtype)
    out = torch.empty(size, size, device=device, dtype=dtype)
    seconds = _best_time(lambda: torch.mm(left, right, out=out), device)
    return 2 * size**3 / seconds


def _convolution_flops(device: torch.device) -> float:
    """FLOP/s of a 3×3 convolution of 64 channels into 64 over a batch of 32 28×28 maps (a small CNN's layer)."""
    batch, channels, side = 32, 64, 28
    images = torch.randn(batch, channels, side, side, device=device)
    kernels = torch.randn(channels, channels, 3, 3, device=device)
    seconds = _best_time(lambda: torch.nn.functional.conv2d(images, kernels, padding=1), device)
    return 2 * batch * channels * side * side * channels * 9 / seconds


def _bandwidth(device: torch.device) -> float:
    count = COPY_BYTES[device.type if device.type in COPY_BYTES else "cpu"] // 4
    source = torch.ones(count, device=device)
    target = torch.empty_like(source)
    seconds = _best_time(lambda: target.copy_(source), device)
    return 2 * source.nbytes / seconds


def _op_seconds(device: torch.device) -> float:
    """Seconds per dispatched operation of a training step too small for its arithmetic to count: a tiny MLP's
    forward, backward and Adam step, timed and divided by the operations it dispatches (Python modules, autograd
    and the optimizer's loop included, as in a real small model's step)."""
    from torch import nn

    from deepwright.compute.cost import OperationCounter

    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8)).to(device)
    optimizer = torch.optim.Adam(model.parameters())
    batch = torch.ones(4, 8, device=device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        model(batch).sum().backward()
        optimizer.step()

    step()
    with OperationCounter() as counter:
        step()
    return _best_time(step, device) / max(1, counter.count)


def _best_time(work: Callable[[], object], device: torch.device) -> float:
    """The fastest of repeated timings of `work` over about `SECONDS_PER_FIGURE` (at least 3, after a warm-up)."""
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    work()
    synchronize()
    best, deadline, runs = float("inf"), time.perf_counter() + SECONDS_PER_FIGURE, 0
    while runs < 3 or time.perf_counter() < deadline:
        started = time.perf_counter()
        work()
        synchronize()
        best = min(best, time.perf_counter() - started)
        runs += 1
    return max(best, 1e-9)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"
