"""How close `deepwright plan`'s estimated step time comes to a real run's, on three models (goal: within 25 %).

For each model the plan is made in this process (`deepwright.plan.make_plan`, the machine's probe from its cache,
or measured once), then the same config trains on the same data (`Pipeline.fit`, no progress output), and the
measured step time is the median over the steady rounds (all but the first) of the round's training seconds over
its optimizer steps, from the run's history (the epoch loop's `seconds` per epoch; the step loop's per estimate).
Validation is outside both figures.

- `tabular_seed`: the seed's model (1000 numeric inputs → Dense 128 ReLU → 10 classes, Adam 1e-3) on a generated
  table of `--rows` rows (80/20 split, no validation rows), at batch 32 and 256;
- `image_cnn`: the default image encoder (ConvStack 32/64/128) and combiner on `--images` generated 28×28 grey
  PNGs of 10 classes, batch 64, Adam at a constant rate;
- `gpt_baby`: nanoGPT's CPU "baby GPT" (`gpt_loop.py`'s config: 4 layers, 4 heads, width 128, block 64, batch 12)
  on Tiny Shakespeare (../shared/data/tinyshakespeare, else the tests' excerpt), `--steps` steps.

All at `--threads` (2) torch threads. The result (JSON, last line): per model the estimate, the measured median,
their ratio and whether it is within 25 %. `--tiny` runs every model on a few rows and steps, to check that the
script works (its figures are then no measurement). Run it alone on a quiet machine:

    .venv/bin/python benchmarks/plan_accuracy.py [--data-dir /tmp/deepwright-bench] [--rows 20000] [--epochs 4]
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from _common import REPO_ROOT, SHARED_DATA_DIR, base_parser, emit, environment, log, median, wait_for_quiet_cpu
from gpt_loop import language_model_config
from tabular_loop import seed_config

GOAL = 0.25  # |estimate / measured - 1|
FEATURES = 1000
CORPORA = (
    SHARED_DATA_DIR / "tinyshakespeare" / "input.txt",
    REPO_ROOT / "tests" / "fixtures" / "text" / "shakespeare.txt",
)


def seed_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    """`rows` rows of 1000 standard-normal numbers `f0…f999` and a 10-class `label` from a fixed projection."""
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((rows, FEATURES), dtype=np.float32)
    labels = (values @ rng.standard_normal((FEATURES, 10), dtype=np.float32)).argmax(axis=1)
    frame = pd.DataFrame(values, columns=[f"f{index}" for index in range(FEATURES)])
    frame["label"] = [f"c{label}" for label in labels]
    return frame


def image_folder(folder: Path, count: int, side: int = 28, classes: int = 10) -> Path:
    """`count` grey PNGs (a fixed random pattern per class plus noise) and `images.csv` listing them; once."""
    from PIL import Image

    listing = folder / f"images-{count}.csv"
    if listing.is_file():
        return listing
    rng = np.random.default_rng(0)
    patterns = rng.uniform(0, 255, size=(classes, side, side))
    labels = np.arange(count) % classes
    (folder / "images").mkdir(parents=True, exist_ok=True)
    paths = []
    for index, label in enumerate(labels):
        pixels = patterns[label] * 0.7 + rng.uniform(0, 255 * 0.3, size=(side, side))
        path = folder / "images" / f"{index:05d}.png"
        Image.fromarray(pixels.astype(np.uint8), "L").save(path)
        paths.append(f"images/{path.name}")
    pd.DataFrame({"image": paths, "label": [f"d{label}" for label in labels]}).to_csv(listing, index=False)
    return listing


def image_config(epochs: int, threads: int) -> dict[str, Any]:
    """The default image encoder and combiner, no augmentation, batch 64, Adam at a constant rate."""
    return {
        "input_features": [{"name": "image", "type": "image"}],
        "output_features": [{"name": "label", "type": "category"}],
        "preprocessing": {"split": {"method": "random", "fractions": [0.8, 0.2]}},
        "trainer": {
            "epochs": epochs,
            "batch_size": 64,
            "optimizer": {"type": "adam", "lr": 0.001},
            "threads": threads,
        },
    }


def measured_step_seconds(history: list[dict[str, Any]], steps_per_round: float) -> float:
    """The median over the rounds after the first (all, with one) of the round's seconds per optimizer step."""
    rounds = history[1:] or history
    return median([record["seconds"] / steps_per_round for record in rounds])


def compare(name: str, config: dict[str, Any], data: Any, wait_s: float) -> dict[str, Any]:
    """Plan `config` on `data`, train it, and compare the estimated step time with the measured one."""
    import deepwright
    from deepwright.plan import make_plan

    plan = make_plan(config, data)
    wait_for_quiet_cpu(timeout_s=wait_s)
    with tempfile.TemporaryDirectory(prefix="dw-plan-") as output:
        result = deepwright.Pipeline.from_config(config).fit(data, output_dir=Path(output), progress=False)
    steps_per_round = plan.steps_per_epoch or config["trainer"]["eval_every"]  # an epoch's, or an estimate's
    measured = measured_step_seconds(result.history, steps_per_round)
    estimate = plan.step.step
    row = {
        "estimated_step_s": round(estimate, 6),
        "measured_step_s": round(measured, 6),
        "ratio": round(estimate / measured, 3),
        "within_goal": abs(estimate / measured - 1) <= GOAL,
        "estimate_parts_s": {key: round(value, 6) for key, value in vars(plan.step).items()},
        "flops_per_item": round(plan.cost.flops_per_item),
        "unit": plan.unit,
        "parameters": plan.total_parameters,
        "mfu": median([record["mfu"] for record in result.history if "mfu" in record] or [0.0]),
        "rounds": len(result.history),
    }
    log(f"{name}: estimate {estimate * 1e3:.3f} ms, measured {measured * 1e3:.3f} ms per step ({row['ratio']}×)")
    return row


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0], repeats=None)
    parser.add_argument("--rows", type=int, default=20_000, help="rows of the generated seed table (default: 20000)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs of the tabular and image runs (default: 4)")
    parser.add_argument("--images", type=int, default=4_000, help="generated images (default: 4000)")
    parser.add_argument("--steps", type=int, default=400, help="steps of the GPT run (default: 400)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    parser.add_argument("--tiny", action="store_true", help="a few rows and steps: check that the script runs")
    args = parser.parse_args()
    if args.tiny:
        args.rows, args.epochs, args.images, args.steps = 300, 2, 96, 20
    corpus = next(path for path in CORPORA if path.is_file())
    eval_every = max(1, args.steps // 4)
    results = {}
    frame = seed_frame(args.rows)
    for batch_size in (32, 256):
        config = seed_config(batch_size, args.epochs)
        config["trainer"]["threads"] = args.threads
        results[f"tabular_seed_batch{batch_size}"] = compare(
            f"seed, batch {batch_size}", config, frame, args.wait_quiet
        )
    listing = image_folder(args.data_dir / "plan_accuracy", args.images)
    results["image_cnn"] = compare("image CNN", image_config(args.epochs, args.threads), listing, args.wait_quiet)
    gpt = language_model_config(args.steps, eval_every=eval_every, eval_batches=2, threads=args.threads)
    results["gpt_baby"] = compare("GPT baby", gpt, corpus, args.wait_quiet)
    emit(
        {
            "benchmark": "plan_accuracy",
            "goal": f"estimated step time within {GOAL:.0%} of the measured median",
            "tiny": args.tiny,
            "corpus": str(corpus),
            "results": results,
            "all_within_goal": all(row["within_goal"] for row in results.values()),
            "environment": environment(),
        }
    )


if __name__ == "__main__":
    main()
