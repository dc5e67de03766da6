"""Language-model training speed and quality: `deepwright train` on character-level Tiny Shakespeare with nanoGPT's CPU
configuration, beside a hand-written nanoGPT loop of the same size (benchmarks/nanogpt_reference.py), in one session.

The configuration (nanoGPT README, "baby GPT" on a CPU): 4 layers, 4 heads, width 128, block 64, batch 12, 2,000
iterations, lr 1e-3 (100 warm-up steps, cosine to 1e-4), dropout 0, AdamW (0.9, 0.99), weight decay 0.1, gradient
clipping 1.0; nanoGPT's split (the first 90 % of the characters train). Measured, in this order:

1. the matmul peak of this machine now, with `matmul_gflops` of `../shared/bench/cpu_peak.py` (fp32 at 1024 and
   2048; bf16 at 1024 only and one matmul per timing: on a CPU without AVX-512, where oneDNN has no bf16 kernels,
   the script's own constant-work bf16 probe takes most of an hour), for model-FLOPs utilisation;
2. the hand-written loop, fp32;
3. `deepwright train` with the same configuration, fp32 (its config is `init --task lm`'s, written out);
4. the same with `trainer.precision: bf16` (autocast), for `--bf16-iters` steps (then beside an fp32 run of as
   many steps);
5. optionally (`--compile`) the same with `trainer.compile: true`.

Tokens/s count the training steps only (both tools leave out their evaluations). The validation loss is measured
on the whole validation text in consecutive blocks of 64 (nanoGPT's own figure is the mean of 20 random batches,
also reported). MFU = (6 × non-embedding parameters + 12 × layers × width × block) × tokens/s ÷ the matmul peak
(fp32 runs against the fp32 peak, bf16 runs against the bf16 peak). Goals: val loss ≤ 1.88; fp32 tokens/s ≥ 1.0×
the hand-written loop; bf16 ≥ 1.5× fp32 at the same loss.

    .venv/bin/python benchmarks/gpt_loop.py [--iters 2000] [--data-dir /tmp/deepwright-bench] [--compile]
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import yaml

from _common import (
    PYTHON,
    REPO_ROOT,
    SHARED_DATA_DIR,
    base_parser,
    deepwright_command,
    emit,
    environment,
    last_json_line,
    log,
    measured,
    ratio,
    reference_script,
    run_timed,
    wait_for_quiet_cpu,
)

CORPUS = SHARED_DATA_DIR / "tinyshakespeare" / "input.txt"
LAYERS, WIDTH, BLOCK, BATCH = 4, 128, 64, 12


def language_model_config(iters: int, **trainer: Any) -> dict[str, Any]:
    """nanoGPT's CPU configuration as a deepwright config (what `init --task lm` writes, with `iters` steps)."""
    return {
        "model_type": "lm",
        "tokenizer": {"type": "char"},
        "model": {"layers": LAYERS, "heads": 4, "dim": WIDTH, "block_size": BLOCK, "dropout": 0.0},
        "trainer": {
            "max_steps": iters,
            "batch_size": BATCH,
            "eval_every": 250,
            "optimizer": {"type": "adamw", "lr": 1e-3},
            **trainer,
        },
    }


def matmul_peak(threads: int | None) -> dict[str, float]:
    """Best fp32 and bf16 matmul GFLOP/s now, measured by cpu_peak.py's own `matmul_gflops`."""
    import importlib.util

    import torch

    path = reference_script("cpu_peak.py")
    spec = importlib.util.spec_from_file_location("cpu_peak", path)
    cpu_peak = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cpu_peak)
    if threads:
        torch.set_num_threads(threads)
    fp32 = max(
        cpu_peak.matmul_gflops(size, torch.float32, 3, max(1, (2048 // size) ** 3))["best_gflops"]
        for size in (1024, 2048)
    )
    bf16 = cpu_peak.matmul_gflops(1024, torch.bfloat16, 2, 1)["best_gflops"]
    return {"peak_fp32_gflops": fp32, "peak_bf16_gflops": bf16, "threads": torch.get_num_threads()}


def flops_per_token(non_embedding_parameters: int) -> float:
    """nanoGPT's estimate: 6 per parameter (forward and backward matmuls) plus the attention scores."""
    return 6.0 * non_embedding_parameters + 12.0 * LAYERS * WIDTH * BLOCK


def run_reference_loop(iters: int, threads: int | None) -> dict[str, Any]:
    """The hand-written loop, as a subprocess of this interpreter."""
    script = REPO_ROOT / "benchmarks" / "nanogpt_reference.py"
    command = [PYTHON, str(script), "--data", str(CORPUS), "--iters", str(iters)]
    seconds, stdout = run_timed(command + (["--threads", str(threads)] if threads else []))
    return last_json_line(stdout) | {"wall_seconds": round(seconds, 1)}


def run_deepwright(name: str, config: dict[str, Any], folder: Path) -> dict[str, Any]:
    """`deepwright train` with `config`; its tokens/s from log.jsonl (steps only) and loss from metrics.json."""
    config_path = folder / f"{name}.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    runs = folder / "runs"
    command = [*deepwright_command(), "train", "--config", str(config_path), "--data", str(CORPUS)]
    seconds, _ = run_timed([*command, "--output", str(runs), "--name", name, "--quiet"])
    run_dir = runs / name
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text(encoding="utf-8").splitlines()]
    train_seconds = sum(record["seconds"] for record in records)
    cpu_seconds = sum(record["cpu_seconds"] for record in records)
    tokens = config["trainer"]["max_steps"] * BATCH * BLOCK
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))["validation"]["next_token"]
    return {
        "tool": f"deepwright {name}",
        "tokens_per_second": round(tokens / train_seconds, 1),
        "train_seconds": round(train_seconds, 2),
        "tokens_per_cpu_second": round(tokens / cpu_seconds, 1),
        "val_loss": round(metrics["loss"], 4),
        "val_loss_estimates": [round(record["val_loss"], 4) for record in records],
        "wall_seconds": round(seconds, 1),
        "run_dir": str(run_dir),
    }


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0], repeats=None)
    parser.add_argument("--iters", type=int, default=2000, help="training steps of every run (default: 2000)")
    parser.add_argument("--compile", action="store_true", help="also run deepwright with torch.compile")
    parser.add_argument("--threads", type=int, help="torch threads of every run (default: each tool's own choice)")
    parser.add_argument(
        "--bf16-iters",
        type=int,
        help="steps of the bf16 run, compared with an fp32 run of as many steps (default: --iters; fewer where bf16 "
        "has no fast kernels and would take hours)",
    )
    args = parser.parse_args()
    if not CORPUS.is_file():
        raise SystemExit(f"error: {CORPUS} is absent; it is the Tiny Shakespeare file of ../shared/data")
    folder = args.data_dir / "gpt_loop"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)

    wait_for_quiet_cpu(timeout_s=args.wait_quiet)
    peak = matmul_peak(args.threads)
    log(f"matmul peak: fp32 {peak['peak_fp32_gflops']} GFLOP/s, bf16 {peak['peak_bf16_gflops']} GFLOP/s")
    runs: dict[str, dict[str, Any]] = {}
    threads = {"threads": args.threads} if args.threads else {}
    bf16_iters = args.bf16_iters or args.iters
    plans = [
        ("hand-written fp32", lambda: run_reference_loop(args.iters, args.threads)),
        ("deepwright fp32", lambda: run_deepwright("fp32", language_model_config(args.iters, **threads), folder)),
    ]
    if bf16_iters != args.iters:  # the fp32 run that the shorter bf16 run is compared with
        config = language_model_config(bf16_iters, **threads)
        plans.append(("deepwright fp32 short", lambda: run_deepwright("fp32-short", config, folder)))
    plans.append(
        (
            "deepwright bf16",
            lambda: run_deepwright("bf16", language_model_config(bf16_iters, precision="bf16", **threads), folder),
        )
    )
    if args.compile:
        config = language_model_config(args.iters, compile=True, **threads)
        plans.append(("deepwright fp32 compiled", lambda: run_deepwright("compiled", config, folder)))
    for name, run in plans:
        wait_for_quiet_cpu(timeout_s=args.wait_quiet)
        runs[name] = measured(run)
        log(
            f"{name}: {runs[name]['tokens_per_second']:,.0f} tokens/s, val loss {runs[name]['val_loss']} "
            f"({runs[name]['others_cpu_share']:.0%} of the CPUs used by others)"
        )
    per_token = flops_per_token(runs["hand-written fp32"]["non_embedding_parameters"])
    for name, run in runs.items():
        peak_gflops = peak["peak_bf16_gflops"] if "bf16" in name else peak["peak_fp32_gflops"]
        run["mfu"] = round(per_token * run["tokens_per_second"] / (peak_gflops * 1e9), 4)
    fp32, bf16 = runs["deepwright fp32"], runs["deepwright bf16"]
    fp32_same_steps = runs.get("deepwright fp32 short", fp32)
    reference = runs["hand-written fp32"]
    emit(
        {
            "benchmark": "gpt_loop",
            "compares": "deepwright train (model_type lm) vs a hand-written nanoGPT loop, char Tiny Shakespeare, "
            "nanoGPT's CPU configuration",
            "iters": args.iters,
            "flops_per_token": per_token,
            "peak_gflops": peak,
            "runs": runs,
            "fp32_vs_hand_written": ratio(fp32["tokens_per_second"], reference["tokens_per_second"]),
            "fp32_vs_hand_written_cpu_time": ratio(fp32["tokens_per_cpu_second"], reference["tokens_per_cpu_second"]),
            "bf16_iters": bf16_iters,
            "bf16_vs_fp32": ratio(bf16["tokens_per_second"], fp32_same_steps["tokens_per_second"]),
            "goals": {
                "val_loss <= 1.88": fp32["val_loss"] <= 1.88,
                "fp32 >= 1.0x hand-written": fp32["tokens_per_second"] >= reference["tokens_per_second"],
                "bf16 >= 1.5x fp32": bf16["tokens_per_second"] >= 1.5 * fp32_same_steps["tokens_per_second"],
                "bf16 loss within 0.02 of fp32": abs(bf16["val_loss"] - fp32_same_steps["val_loss"]) <= 0.02,
            },
            "nanogpt_published": {"val_loss": 1.88, "measured_here_before": "13,400-15,000 tokens/s, val 1.8857"},
            "environment": environment(),
        }
    )


if __name__ == "__main__":
    main()
