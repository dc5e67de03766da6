"""The GPU check that `benchmarks/gpu_check.sh` runs: nanoGPT's shakespeare-char GPU configuration trained by
deepwright, with its tokens/s, model-FLOPs utilisation and validation loss.

The configuration (nanoGPT `config/train_shakespeare_char.py`): 6 layers, 6 heads, width 384, block 256, dropout
0.2, no biases, batch 64, 5,000 steps, AdamW lr 1e-3 (betas 0.9/0.99, weight decay 0.1), 100 warm-up steps then
cosine decay to 1e-4, gradient clipping 1.0, an estimate every 250 steps over 200 random validation batches; here in
bf16 autocast with `torch.compile`, on the first CUDA device. Goals: validation loss ≤ 1.47 (nanoGPT's published
1.4697, its 200-batch estimate) and MFU ≥ 40 % of the GPU's dense bf16 peak.

MFU = flops per token (6 × non-embedding parameters + 12 × layers × width × block, as nanoGPT and PaLM count) ×
tokens/s ÷ the peak. The peak comes from the GPU's name (`PEAK_BF16_TFLOPS`, dense, no sparsity), or
`--peak-tflops`. Tokens/s is the median over the rounds after the first (which holds the compilation).

With `--dry-run`, or where there is no CUDA, the same model trains a few steps on the CPU (fp32, no compile, small
batches, from the tests' small text when the corpus is absent): a check that the script runs, not a measurement.

    python benchmarks/gpu_check.py [--data ../shared/data/tinyshakespeare/input.txt] [--dry-run] [--steps 5000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO_ROOT.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"
SMALL_CORPUS = REPO_ROOT / "tests" / "fixtures" / "text" / "shakespeare.txt"
PUBLISHED_VAL_LOSS = 1.4697
GOALS = {"val_loss": 1.47, "mfu": 0.40}
# Dense bf16 tensor-core peaks (TFLOP/s) by a word of the device name, the first match winning.
PEAK_BF16_TFLOPS = {
    "H200": 989.0,
    "H100 PCIe": 756.0,
    "H100": 989.0,
    "GH200": 989.0,
    "A100": 312.0,
    "A10G": 70.0,
    "L40S": 362.0,
    "L4": 121.0,
    "4090": 165.0,
    "V100": 125.0,  # fp16: V100 has no bf16 units
}


def nanogpt_config(steps: int, *, dry_run: bool) -> dict[str, Any]:
    """nanoGPT's shakespeare-char GPU configuration as a deepwright config (a few small CPU steps for a dry run)."""
    trainer: dict[str, Any] = {
        "max_steps": steps,
        "batch_size": 64,
        "eval_every": 250,
        "eval_batches": 200,
        "optimizer": {"type": "adamw", "lr": 1e-3, "betas": [0.9, 0.99], "weight_decay": 0.1},
        "schedule": {"type": "cosine", "warmup_fraction": 100 / steps, "min_lr_ratio": 0.1},
        "gradient_clip": 1.0,
        "precision": "bf16",
        "compile": True,
        "device": "cuda",
        "checkpoint": False,
    }
    if dry_run:
        trainer.update(batch_size=2, eval_every=steps, eval_batches=1, precision="fp32", compile=False, device="cpu")
        trainer["schedule"]["warmup_fraction"] = 0.0
    return {
        "model_type": "lm",
        "name": "shakespeare-char",
        "tokenizer": {"type": "char"},
        "model": {"layers": 6, "heads": 6, "dim": 384, "block_size": 256, "dropout": 0.2, "bias": False},
        "trainer": trainer,
    }


def peak_tflops(device_name: str) -> float | None:
    """The dense bf16 peak of the GPU called `device_name`, when it is in the table.

    >>> peak_tflops("NVIDIA H100 80GB HBM3")
    989.0
    """
    return next((peak for word, peak in PEAK_BF16_TFLOPS.items() if word in device_name), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_CORPUS, help=f"the corpus (default: {DEFAULT_CORPUS})")
    parser.add_argument("--steps", type=int, help="optimizer steps (default: 5000; 3 for a dry run)")
    parser.add_argument("--dry-run", action="store_true", help="a few CPU steps: check the script, measure nothing")
    parser.add_argument("--peak-tflops", type=float, help="the GPU's dense bf16 peak (default: from its name)")
    parser.add_argument("--output", type=Path, help="folder for the run (default: a temporary one)")
    args = parser.parse_args()

    import torch

    import deepwright as dp

    dry_run = args.dry_run or not torch.cuda.is_available()
    if dry_run and not args.dry_run:
        print("note: no CUDA device here; running the CPU dry run", file=sys.stderr)
    data = args.data if args.data.is_file() else None
    if data is None and not dry_run:
        raise SystemExit(f"error: {args.data} is absent; give the Tiny Shakespeare text with --data")
    data = data or SMALL_CORPUS
    steps = args.steps or (3 if dry_run else 5000)
    config = nanogpt_config(steps, dry_run=dry_run)
    device_name = torch.cuda.get_device_name(0) if not dry_run else "cpu"
    peak = args.peak_tflops or (peak_tflops(device_name) if not dry_run else None)
    with tempfile.TemporaryDirectory(prefix="dw-gpu-check-") as scratch:
        output = args.output or Path(scratch)
        started = time.perf_counter()
        result = dp.Pipeline.from_config(config).fit(data, output_dir=output, progress=not dry_run)
        seconds = time.perf_counter() - started
        model = dp.load(result.bundle_dir).predictor.model
    history = result.history
    speeds = [record["tokens_per_second"] for record in (history[1:] or history)]
    tokens_per_second = statistics.median(speeds)
    flops_per_token = model.flops_per_token()
    mfu = flops_per_token * tokens_per_second / (peak * 1e12) if peak else None
    val_loss = history[-1].get("val_loss")
    figures = {
        "benchmark": "gpu_check",
        "dry_run": dry_run,
        "device": device_name,
        "torch": torch.__version__,
        "config": config,
        "corpus": str(data),
        "steps": steps,
        "tokens_per_second": round(tokens_per_second, 1),
        "flops_per_token": flops_per_token,
        "peak_bf16_tflops": peak,
        "mfu": None if mfu is None else round(mfu, 4),
        "val_loss": val_loss,  # the 200-batch estimate, nanoGPT's figure
        "val_loss_whole_text": result.metrics.get("validation", {}).get("loss"),
        "published_val_loss": PUBLISHED_VAL_LOSS,
        "wall_seconds": round(seconds, 1),
        "estimates": [{key: record.get(key) for key in ("step", "train_loss", "val_loss")} for record in history],
    }
    if not dry_run:
        figures["goals"] = {
            f"val_loss <= {GOALS['val_loss']}": val_loss is not None and val_loss <= GOALS["val_loss"],
            f"mfu >= {GOALS['mfu']:.0%}": mfu is not None and mfu >= GOALS["mfu"],
        }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
