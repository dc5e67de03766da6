"""Training images/s on 28×28 grey digits: deepwright against a hand-written PyTorch loop with the same network,
and what deepwright's decode cache saves on a folder of PNG files.

Data: the 10,000 MNIST test images (../shared/data/mnist_test10k; 10,000 generated 28×28 grey images of 10 classes
when those files are absent), written as PNG files plus a CSV (`image`, `label`, `split`) by `image_quality.py`'s
code, split as the data README says: 8,000 train / 2,000 test.

Loop comparison (both in this process, 2 torch threads, batch 64 — the batch `deepwright init` picks for images —,
Adam 1e-3 at a constant rate, no augmentation on either side, no validation rows, `--epochs` epochs, cross-entropy):

- deepwright: `Pipeline.from_config(dict).fit(csv)` with the default image encoder and the default concat combiner;
  the PNGs are decoded once into the run's uint8 cache (reused across rounds), so training reads images from memory.
  The figure is the median `samples_per_second` of the steady epochs (all but the first) from the run's history.
- torch: the same network written by hand with torch.nn (Conv 3×3 32/64/128 without bias → BatchNorm → ReLU →
  MaxPool 2 (ceil), global average pooling, Linear 128 → ReLU → Linear 10; uint8 input scaled to [0, 1] and
  normalised with the training mean and std), the 8,000 training images held as one uint8 tensor, one randperm per
  epoch and tensor indexing per batch. The figure is the median images/s over the same steady epochs.
  The two networks' parameter counts and shapes are printed and must be equal, or the script stops.

The two are interleaved (the order alternates every round); rounds run until `--repeats` (3) had no run during
which other processes used more than 10% of the CPUs, or twice that many ran; the result is the median over those
clean rounds (every round when fewer were clean, as `basis` says), the ratio deepwright / torch of those medians,
and the median of the round-by-round ratios. Goal: ratio ≥ 0.9.

Decode cache (deepwright from the CSV of PNG paths, `--cache-epochs` epochs each, run once): a cold `fit` into a
fresh output folder (preprocessing decodes every PNG of every split and fills the cache file before epoch 1), a
warm `fit` into the same folder (the cache file is reused), and a `fit` with `cache_memory_mb: 0` (no cache: images
decoded for every batch of every epoch, in DataLoader workers). Reported: the decode + cache-fill seconds (the cold
fit's time outside its epochs minus the warm one's; one pair of runs, so within a few tenths of a second), the first
epoch's rate counting that decode (train images / (decode + fill + first epoch seconds)) against the later epochs'
rate, and the steady rate with the cache against the one without.

`--limit N` keeps the first N images, for a quick check that the script runs (its figures are then no measurement).

    .venv/bin/python benchmarks/image_loop.py [--data-dir /tmp/deepwright-bench] [--repeats 3] [--epochs 5]
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from _common import (
    Rounds,
    base_parser,
    emit,
    environment,
    interleaved,
    log,
    measured,
    median,
    ratio,
    wait_for_quiet_cpu,
)
from image_quality import image_datasets, image_frame, limited, write_pngs
from quality import Dataset, missing_files, prepare

GOAL = 0.9
THREADS = 2
LR = 0.001
SEED = 42


def synthetic_frame(count: int = 10_000, side: int = 28, classes: int = 10) -> pd.DataFrame:
    """Generated grey images when the MNIST files are absent: a fixed random pattern per class, plus noise."""
    rng = np.random.default_rng(0)
    patterns = rng.uniform(0, 255, size=(classes, side, side))
    labels = np.arange(count) % classes
    images = patterns[labels] * 0.7 + rng.uniform(0, 255 * 0.3, size=(count, side, side))
    return image_frame(images.astype(np.uint8), labels)


def source_dataset(limit: int | None) -> Dataset:
    """MNIST as PNG files, or generated images when its files are absent (said on standard error)."""
    mnist = image_datasets(limit)["mnist"]
    absent = missing_files(mnist)
    if not absent:
        return mnist
    log(f"MNIST files absent ({', '.join(absent)}): using 10,000 generated 28×28 grey images instead")
    return Dataset("generated_images", "label", limited(synthetic_frame, limit), materialise=write_pngs)


def loop_config(epochs: int, batch_size: int, *, cache_memory_mb: int | None = None) -> dict[str, Any]:
    """deepwright's config: the default image encoder and combiner, no augmentation, the CSV's split without
    validation rows, Adam at a constant rate, 2 threads."""
    image: dict[str, Any] = {"name": "image", "type": "image"}
    if cache_memory_mb is not None:
        image["cache_memory_mb"] = cache_memory_mb
    return {
        "input_features": [image],
        "output_features": [{"name": "label", "type": "category"}],
        "preprocessing": {"split": {"method": "column", "column": "split", "validation_from_train": 0.0}},
        "trainer": {
            "epochs": epochs,
            "batch_size": batch_size,
            "optimizer": {"type": "adam", "lr": LR},
            "schedule": {"type": "constant"},
            "threads": THREADS,
            "seed": SEED,
        },
    }


def parameter_shapes(model: Any) -> list[tuple[int, ...]]:
    """The shape of every parameter of `model`, in registration order."""
    return [tuple(parameter.shape) for parameter in model.parameters()]


def fit_deepwright(csv: Path, config: dict[str, Any], output: Path) -> tuple[Any, Any]:
    """One `fit` on the CSV into `output` (its `.cache` keeps the decoded images); (result, fitted model)."""
    import deepwright

    pipeline = deepwright.Pipeline.from_config(config)
    result = pipeline.fit(csv, output_dir=output, run_name="image", progress=False)
    shutil.rmtree(result.run_dir)  # keep only the cache between runs
    return result, pipeline.predictor.model


def run_deepwright(csv: Path, epochs: int, batch_size: int, output: Path, expected: list[tuple[int, ...]]) -> dict:
    """One deepwright run of the loop comparison; stops when its network differs from the hand-written one."""
    result, model = fit_deepwright(csv, loop_config(epochs, batch_size), output)
    shapes = parameter_shapes(model)
    if shapes != expected:
        raise SystemExit(
            f"error: deepwright's network ({sum(map(np.prod, shapes)):,} parameters, shapes {shapes}) differs from "
            f"the hand-written one ({sum(map(np.prod, expected)):,} parameters, shapes {expected}); update "
            "ReferenceNet to match deepwright's default image encoder, combiner and head"
        )
    speeds = [record["samples_per_second"] for record in result.history]
    return {
        "steady_samples_per_s": median(speeds[1:]),
        "first_epoch_samples_per_s": speeds[0],
        "train_s": round(sum(record["seconds"] for record in result.history), 3),
        "fit_s": round(result.seconds, 3),
        "n_train": result.split_sizes["train"],
        "parameters": sum(parameter.numel() for parameter in model.parameters()),
        "test_accuracy": result.metrics["test"]["label"]["accuracy"],
    }


def reference_network(classes: int, mean: float, std: float) -> Any:
    """The hand-written network (see the module docstring), as an nn.Module taking uint8 images (B, 1, H, W)."""
    import torch
    from torch import nn

    class ReferenceNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layers: list[nn.Module] = []
            for before, after in ((1, 32), (32, 64), (64, 128)):
                layers += [
                    nn.Conv2d(before, after, 3, padding="same", bias=False),
                    nn.BatchNorm2d(after),
                    nn.ReLU(),
                    nn.MaxPool2d(2, ceil_mode=True),
                ]
            self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
            self.classifier = nn.Sequential(nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, classes))
            self.register_buffer("mean", torch.tensor(mean))
            self.register_buffer("std", torch.tensor(std))

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            pixels = (images.float() / 255 - self.mean) / self.std
            return self.classifier(self.features(pixels))

    return ReferenceNet()


def run_torch(data: dict[str, Any], epochs: int, batch_size: int) -> dict[str, Any]:
    """One run of the hand-written loop on the in-memory uint8 tensors."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(THREADS)
    torch.manual_seed(SEED)
    images, labels = data["train_images"], data["train_labels"]
    scaled = images.float() / 255
    model = reference_network(int(labels.max()) + 1, scaled.mean().item(), scaled.std(correction=0).item())
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    count, speeds = len(images), []
    for _ in range(epochs):
        model.train()
        started, seen = time.perf_counter(), 0
        order = torch.randperm(count)
        for start in range(0, count, batch_size):
            rows = order[start : start + batch_size]
            if len(rows) < 2:  # batch norm cannot train on one image
                continue
            loss = F.cross_entropy(model(images[rows]), labels[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seen += len(rows)
        speeds.append(seen / (time.perf_counter() - started))
    model.eval()
    with torch.inference_mode():
        predicted = torch.cat([model(batch).argmax(1) for batch in data["test_images"].split(1024)])
    return {
        "steady_samples_per_s": round(median(speeds[1:]), 1),
        "first_epoch_samples_per_s": round(speeds[0], 1),
        "n_train": count,
        "parameters": sum(parameter.numel() for parameter in model.parameters()),
        "test_accuracy": round(float((predicted == data["test_labels"]).float().mean()), 4),
    }


def in_memory(csv: Path) -> dict[str, Any]:
    """The CSV's training and test images as uint8 tensors (N, 1, H, W) with int64 labels, decoded once."""
    import torch
    from PIL import Image

    frame = pd.read_csv(csv)
    data = {}
    for split in ("train", "test"):
        rows = frame[frame["split"] == split]
        pixels = np.stack([np.asarray(Image.open(csv.parent / path).convert("L")) for path in rows["image"]])
        data[f"{split}_images"] = torch.from_numpy(pixels[:, None].copy())
        data[f"{split}_labels"] = torch.tensor(rows["label"].to_numpy(dtype=np.int64))
    return data


def summarize(rounds: Rounds, parameters: dict[str, int]) -> dict[str, Any]:
    """Medians of both loops, their ratio, and whether the goal is met."""
    ours = rounds.median("deepwright", "steady_samples_per_s")
    theirs = rounds.median("torch", "steady_samples_per_s")
    per_round = rounds.ratios("deepwright", "torch", "steady_samples_per_s")
    return {
        "deepwright_steady_samples_per_s": round(ours, 1),
        "torch_steady_samples_per_s": round(theirs, 1),
        "ratio": ratio(ours, theirs),
        "ratio_per_round": per_round,
        "median_ratio_per_round": round(median(per_round), 3),
        "goal_met": ours / theirs >= GOAL,
        "parameters": parameters,
        **rounds.record(),
    }


def decode_cache(csv: Path, epochs: int, batch_size: int, folder: Path, wait_s: float) -> dict[str, Any]:
    """Cold (decode + fill), warm (cache reused) and uncached fits from the CSV of PNG paths."""
    shutil.rmtree(folder, ignore_errors=True)
    runs = {}
    for name, output, cache_memory_mb in (
        ("cold", folder / "cached", None),
        ("warm", folder / "cached", None),
        ("no_cache", folder / "uncached", 0),
    ):
        wait_for_quiet_cpu(timeout_s=wait_s)

        def fit(output: Path = output, cache_memory_mb: int | None = cache_memory_mb) -> dict[str, Any]:
            config = loop_config(epochs, batch_size, cache_memory_mb=cache_memory_mb)
            result, _ = fit_deepwright(csv, config, output)
            speeds = [record["samples_per_second"] for record in result.history]
            train_s = sum(record["seconds"] for record in result.history)
            return {
                "fit_s": round(result.seconds, 3),
                "outside_epochs_s": round(result.seconds - train_s, 3),
                "first_epoch_s": result.history[0]["seconds"],
                "epoch_samples_per_s": speeds,
                "n_train": result.split_sizes["train"],
                "n_images": sum(result.split_sizes.values()),
            }

        runs[name] = measured(fit)
        log(f"decode cache, {name}: fit {runs[name]['fit_s']} s, epochs {runs[name]['epoch_samples_per_s']} images/s")
    cold, no_cache = runs["cold"], runs["no_cache"]
    decode_s = max(cold["outside_epochs_s"] - runs["warm"]["outside_epochs_s"], 0.0)
    first = cold["n_train"] / (decode_s + cold["first_epoch_s"])
    later = median(cold["epoch_samples_per_s"][1:])
    uncached = median(no_cache["epoch_samples_per_s"][1:])
    return {
        "images_decoded": cold["n_images"],
        "decode_and_fill_s": round(decode_s, 3),
        "first_epoch_with_decode_samples_per_s": round(first, 1),
        "later_epochs_samples_per_s": round(later, 1),
        "later_vs_first_epoch": ratio(later, first),
        "no_cache_steady_samples_per_s": round(uncached, 1),
        "cache_vs_no_cache": ratio(later, uncached),
        "runs": runs,
    }


def main() -> None:
    from deepwright.data.infer import MEDIA_SCHEDULES

    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5, help="epochs per run of the loop comparison (at least 2)")
    parser.add_argument("--cache-epochs", type=int, default=3, help="epochs per run of the decode-cache part")
    parser.add_argument("--limit", type=int, help="keep the first N images (a quick check only)")
    args = parser.parse_args()
    if min(args.epochs, args.cache_epochs) < 2:
        parser.error("--epochs and --cache-epochs must be at least 2 (the first epoch is not a steady one)")
    batch_size = MEDIA_SCHEDULES["image"]["batch_size"]
    dataset = source_dataset(args.limit)
    folder = args.data_dir / "image_loop"
    log(f"writing {dataset.name} as PNG files under {folder / dataset.name}")
    csv = prepare(dataset, folder / dataset.name)
    data = in_memory(csv)
    shapes = parameter_shapes(reference_network(int(data["train_labels"].max()) + 1, 0.0, 1.0))
    output = folder / "runs"
    shutil.rmtree(output, ignore_errors=True)
    tools = {
        "torch": lambda: run_torch(data, args.epochs, batch_size),
        "deepwright": lambda: run_deepwright(csv, args.epochs, batch_size, output, shapes),
    }
    rounds = interleaved(tools, args.repeats, wait_s=args.wait_quiet, figure="steady_samples_per_s")
    parameters = {name: rounds.runs[name][0]["parameters"] for name in tools}
    cache = decode_cache(csv, args.cache_epochs, batch_size, folder / "cache_runs", args.wait_quiet)
    emit(
        {
            "benchmark": "image_loop",
            "compares": "deepwright Pipeline.fit steady images/s vs a hand-written PyTorch loop with the same "
            "network on in-memory uint8 images; and deepwright's decode cache on PNG files",
            "goal": f"ratio >= {GOAL}",
            "data": dataset.name,
            "limit": args.limit,
            "repeats": args.repeats,
            "epochs": args.epochs,
            "batch_size": batch_size,
            "augmentation": "off on both sides",
            "loop": summarize(rounds, parameters),
            "decode_cache": cache,
            "environment": environment(),
        }
    )


if __name__ == "__main__":
    main()
