"""Image classification accuracy with the default image config, from the CLI alone, on the data README's splits.

For each dataset this script writes every image as a grey PNG file (`images/NNNNN.png`) and a CSV beside them with
the columns `image` (the relative path), `label` and `split` (train/test), then runs what a user would, with no
hand-edited config (the same steps as `quality.py`):

    deepwright init  --data <data-dir>/image_quality/NAME/NAME.csv --target label -o <that folder>/config.yaml
    deepwright train --config <that config> --data <that csv> --output <that folder>/runs --quiet

`init` sees the image paths and the `split` column: it picks the default convolutional encoder, the image training
schedule and augmentation, splits by the column and holds out 10% of the training rows as validation (for early
stopping). Test accuracy comes from the run's `metrics.json`; training time is the `train` command's wall time
(beside the epochs run and the share of the CPUs other processes used meanwhile). Datasets and split rules
(`../shared/data/README.md`):

- digits_images: scikit-learn's bundled digits (1,797 8×8 images, values 0..16 scaled to 0..255);
  mnist_test10k: the 10,000 28×28 MNIST test images (IDX files under ../shared/data/mnist_test10k/).
  Both split by `train_test_split(test_size=0.2, random_state=42, stratify=y)` (mnist: 8,000 / 2,000).
- Goal: test accuracy ≥ 0.985 and the train command under 300 s, each. References from the data README: digits
  (as 64 pixel columns) StandardScaler + LogisticRegression 0.972; mnist on this split: RBF-SVC 0.962, 3-NN 0.955.

mnist is skipped with a message when its files under ../shared/data are absent. `--limit N` keeps the first N images
of each dataset, for a quick check that the script runs (its figures are then no measurement).

    .venv/bin/python benchmarks/image_quality.py [--data-dir /tmp/deepwright-bench] [--only digits mnist]
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from _common import SHARED_DATA_DIR, base_parser, emit, environment
from quality import Dataset, evaluate_all

GOAL = ("accuracy", ">=", 0.985)
MAX_TRAIN_S = 300.0
MNIST_IMAGES = "mnist_test10k/t10k-images-idx3-ubyte.gz"
MNIST_LABELS = "mnist_test10k/t10k-labels-idx1-ubyte.gz"
IMAGE_FOLDER = "images"


def read_idx(path: Path) -> np.ndarray:
    """An IDX file of unsigned bytes (gzipped), such as MNIST's, as an array of its stated shape."""
    with gzip.open(path, "rb") as file:
        data = file.read()
    zeros, kind, dims = data[0:2], data[2], data[3]
    if zeros != b"\0\0" or kind != 0x08:
        raise SystemExit(f"error: {path} is not an IDX file of unsigned bytes")
    shape = tuple(int.from_bytes(data[4 + 4 * axis : 8 + 4 * axis], "big") for axis in range(dims))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def image_frame(images: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """A table of one row per image: `label`, and the uint8 (height, width) pixels in an object column `pixels`."""
    return pd.DataFrame({"label": labels.astype(np.int64), "pixels": list(images)})


def mnist_frame() -> pd.DataFrame:
    """The 10,000 MNIST test images and their labels."""
    return image_frame(read_idx(SHARED_DATA_DIR / MNIST_IMAGES), read_idx(SHARED_DATA_DIR / MNIST_LABELS))


def digits_frame() -> pd.DataFrame:
    """scikit-learn's bundled 8×8 digits, their 0..16 values scaled to 0..255."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return image_frame(np.round(digits.images * 255 / 16).astype(np.uint8), digits.target)


def write_pngs(frame: pd.DataFrame, folder: Path) -> pd.DataFrame:
    """Write each row's pixels to `folder/images/NNNNN.png` (grey); the table with the relative `image` path
    in place of the pixels."""
    from PIL import Image

    (folder / IMAGE_FOLDER).mkdir(parents=True, exist_ok=True)
    paths = [f"{IMAGE_FOLDER}/{index:05d}.png" for index in range(len(frame))]
    for path, pixels in zip(paths, frame["pixels"]):
        Image.fromarray(pixels).save(folder / path)
    return frame.drop(columns="pixels").assign(image=paths)[["image", *frame.columns.drop("pixels")]]


def limited(load: Callable[[], pd.DataFrame], limit: int | None) -> Callable[[], pd.DataFrame]:
    """`load`, keeping only its first `limit` rows when a limit is given."""
    return load if limit is None else lambda: load().head(limit).reset_index(drop=True)


def image_datasets(limit: int | None = None) -> dict[str, Dataset]:
    """The image datasets by their `--only` name, each saved as PNG files plus a CSV."""
    return {
        "digits": Dataset(
            "digits_images",
            "label",
            limited(digits_frame, limit),
            goal=GOAL,
            references={"logistic_regression on 64 pixel columns (data README)": {"accuracy": 0.972}},
            materialise=write_pngs,
        ),
        "mnist": Dataset(
            "mnist_test10k",
            "label",
            limited(mnist_frame, limit),
            files=(MNIST_IMAGES, MNIST_LABELS),
            goal=GOAL,
            references={"rbf_svc (data README)": {"accuracy": 0.962}, "3_nn (data README)": {"accuracy": 0.955}},
            materialise=write_pngs,
        ),
    }


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0], repeats=None)
    parser.add_argument("--only", nargs="+", choices=["digits", "mnist"], help="these datasets (default: both)")
    parser.add_argument("--limit", type=int, help="keep the first N images of each dataset (a quick check only)")
    args = parser.parse_args()
    datasets = image_datasets(args.limit)
    chosen = [dataset for name, dataset in datasets.items() if not args.only or name in args.only]
    rows, skipped = evaluate_all(chosen, args.data_dir / "image_quality", args.wait_quiet)
    for row in rows:
        row["train_under_300_s"] = row["train_command_s"] < MAX_TRAIN_S
    emit(
        {
            "benchmark": "image_quality",
            "compares": "deepwright init + train (CLI, inferred image config) test accuracy on PNG files vs "
            "../shared/data/README.md reference models on the same split",
            "goal": f"test accuracy >= {GOAL[2]} and train command < {MAX_TRAIN_S:.0f} s, each dataset",
            "limit": args.limit,
            "results": rows,
            "skipped": skipped,
            "environment": environment(),
        }
    )


if __name__ == "__main__":
    main()
