#!/usr/bin/env bash
# The GPU check: nanoGPT's shakespeare-char GPU configuration (6 layers, 6 heads, width 384, block 256, dropout 0.2,
# 5,000 steps) trained by deepwright in bf16 with torch.compile; prints one JSON line with tokens/s, MFU against the
# GPU's bf16 peak and the validation loss (benchmarks/gpu_check.py says how each is measured). Goals: val loss <= 1.47,
# MFU >= 40 %.
#
#   bash benchmarks/gpu_check.sh [--data PATH/input.txt] [--steps 5000]   # on a machine with CUDA
#   bash benchmarks/gpu_check.sh --dry-run                                # anywhere: a few CPU steps
#
# It makes a virtual environment (.venv-gpu, or $GPU_CHECK_VENV) that sees the system's packages, so a CUDA build of
# torch already installed is used as it is; otherwise it installs torch from the package index (the machine must
# reach it). deepwright itself is installed from this checkout. With GPU_CHECK_PYTHON set, that interpreter is used
# and nothing is installed. The corpus defaults to ../shared/data/tinyshakespeare/input.txt (give --data on a machine
# without it).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

if [[ -n "${GPU_CHECK_PYTHON:-}" ]]; then
    python="$GPU_CHECK_PYTHON"
else
    venv="${GPU_CHECK_VENV:-$repo/.venv-gpu}"
    if [[ ! -x "$venv/bin/python" ]]; then
        python3 -m venv --system-site-packages "$venv"
    fi
    python="$venv/bin/python"
    if ! "$python" -c "import torch" 2>/dev/null; then
        echo "installing torch into $venv" >&2
        "$python" -m pip install --quiet torch
    fi
    if ! "$python" -c "import deepwright" 2>/dev/null; then
        echo "installing deepwright from $repo into $venv" >&2
        "$python" -m pip install --quiet -e "$repo" || "$python" -m pip install --quiet --no-deps --no-build-isolation -e "$repo"
    fi
fi

"$python" - <<'PY' >&2
import torch
cuda = torch.cuda.is_available()
print(f"torch {torch.__version__}, CUDA {torch.version.cuda if cuda else 'not available'}"
      + (f", {torch.cuda.get_device_name(0)}" if cuda else " (a CPU dry run follows)"))
PY
exec "$python" "$repo/benchmarks/gpu_check.py" "$@"
