"""What a run records about where it ran, so that it can be repeated, and what differs when it is: the library
versions, the world size and backend, the machine, and the git commit of the project.

Nothing here imports torch at module level; `environment()` imports it when asked, to read the GPU and the
process group.

>>> sorted(environment(gpu=False))
['distributed', 'machine', 'versions']
>>> environment_differences({"versions": {"numpy": "1.0"}}, {"versions": {"numpy": "2.0"}})
['numpy 1.0 when recorded, 2.0 now']
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["LIBRARIES", "OPTIONAL_LIBRARIES", "environment", "environment_differences", "git_record"]

# {module: distribution} of the libraries a run always records, and of those it records when they were imported.
LIBRARIES = {
    "torch": "torch",
    "numpy": "numpy",
    "pandas": "pandas",
    "pyarrow": "pyarrow",
    "pydantic": "pydantic",
    "tokenizers": "tokenizers",
}
OPTIONAL_LIBRARIES = {
    "safetensors": "safetensors",
    "yaml": "PyYAML",
    "PIL": "Pillow",
    "soundfile": "soundfile",
    "scipy": "scipy",
    "spafe": "spafe",
    "sklearn": "scikit-learn",
    "matplotlib": "matplotlib",
    "onnx": "onnx",
    "onnxruntime": "onnxruntime",
    "fastapi": "fastapi",
    "uvicorn": "uvicorn",
}
GIT_TIMEOUT_SECONDS = 5.0


def environment(*, gpu: bool = True) -> dict[str, Any]:
    """Where this process runs: {"versions": {library: version, "python"}, "distributed": {"world_size",
    "backend"}, "machine": {"platform", "architecture", "cpu", "cores", "gpu", "gpu_count"}} (`gpu=False` leaves
    torch unasked: no GPU)."""
    return {"versions": versions(), "distributed": distributed(), "machine": machine(gpu=gpu)}


def versions() -> dict[str, str]:
    """deepwright's version, Python's, those of `LIBRARIES`, and of the `OPTIONAL_LIBRARIES` imported so far."""
    from deepwright.version import __version__

    found = {"deepwright": __version__, "python": platform.python_version()}
    wanted = {**LIBRARIES, **{module: name for module, name in OPTIONAL_LIBRARIES.items() if module in sys.modules}}
    for distribution in wanted.values():
        try:
            found[distribution] = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def distributed() -> dict[str, Any]:
    """The process group's world size and backend when torch.distributed is initialised; before a torchrun
    worker joins its group, the world size torchrun set ($WORLD_SIZE) and no backend; else 1 and None."""
    if "torch" in sys.modules:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return {"world_size": dist.get_world_size(), "backend": str(dist.get_backend())}
    planned = os.environ.get("WORLD_SIZE", "1")
    return {"world_size": int(planned) if planned.isdigit() else 1, "backend": None}


def machine(*, gpu: bool = True) -> dict[str, Any]:
    """The operating system, the CPU model and core count, the CUDA device's name (None without one) and the
    number of CUDA devices."""
    return {
        "platform": platform.platform(),
        "architecture": platform.machine(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "gpu": _gpu_name() if gpu else None,
        "gpu_count": _gpu_count() if gpu else 0,
    }


def git_record(folder: Path) -> dict[str, Any] | None:
    """{"commit", "dirty" (tracked files changed), "root"} of the git work tree holding `folder`; None outside a
    repository, without a commit, or without git."""
    commit = _git(folder, "rev-parse", "HEAD")
    if commit is None:
        return None
    status = _git(folder, "status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status), "root": _git(folder, "rev-parse", "--show-toplevel")}


def environment_differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """One line per thing that differs between a run's record and `current` (both shaped like `environment()`,
    plus "git"): a library or Python version, the world size, a machine property, the git commit. Libraries
    that only one side records are left out."""
    lines = []
    before, after = recorded.get("versions") or {}, current.get("versions") or {}
    for name in sorted(before.keys() & after.keys(), key=lambda name: (name != "python", name)):
        if before[name] != after[name]:
            label = "Python" if name == "python" else name
            lines.append(f"{label} {before[name]} when recorded, {after[name]} now")
    for section in ("distributed", "machine"):
        before, after = recorded.get(section) or {}, current.get(section) or {}
        for key in sorted(before.keys() & after.keys()):
            unknown = section == "distributed" and key == "backend" and after[key] is None and after["world_size"] > 1
            if before[key] != after[key] and not unknown:  # a torchrun worker knows its backend once it joins
                lines.append(f"{section} {key}: {before[key]!r} when recorded, {after[key]!r} now")
    lines += _git_differences(recorded.get("git"), current.get("git"))
    return lines


def _git_differences(recorded: dict[str, Any] | None, current: dict[str, Any] | None) -> list[str]:
    if not recorded:
        return []
    if not current:
        return [f"git commit {recorded['commit'][:12]} recorded; {recorded.get('root')} is no git work tree now"]
    lines = []
    if recorded["commit"] != current["commit"]:
        lines.append(f"git commit {recorded['commit'][:12]} when recorded, {current['commit'][:12]} now")
    if current.get("dirty") and not recorded.get("dirty"):
        lines.append(f"git work tree {current.get('root')} has uncommitted changes now (it had none)")
    return lines


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Hardware", "Processor") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpu_name() -> str | None:
    """The CUDA device's name: from torch when this process has started CUDA, else from the NVIDIA driver's
    /proc files (so that a CPU run on a GPU machine does not start CUDA only to read a name)."""
    import torch

    if not torch.cuda.is_available():
        return None
    if torch.cuda.is_initialized():
        return torch.cuda.get_device_name(torch.cuda.current_device())
    for information in sorted(Path("/proc/driver/nvidia/gpus").glob("*/information")):
        try:
            for line in information.read_text(encoding="utf-8", errors="replace").splitlines():
                key, _, value = line.partition(":")
                if key.strip() == "Model" and value.strip():
                    return value.strip()
        except OSError:
            continue
    return torch.cuda.get_device_name(0)


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _git(folder: Path, *args: str) -> str | None:
    """The stripped output of `git -C folder ARGS…`, or None when git is missing, fails or takes too long."""
    environment = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0"}  # status takes no lock
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
            env=environment,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
