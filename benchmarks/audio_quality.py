"""Spoken-digit accuracy with the default audio config, from the CLI alone, on FSDD's official split; training time;
and what the decoded-clip cache saves.

The table is `../shared/data/fsdd/manifest.csv` (columns `path`, `digit`, `speaker`, `split`: recordings 0-4 of each
speaker and digit are the test set, 300 clips; 5-49 train, 2,700), written with absolute paths to
`<data-dir>/audio_quality/fsdd/fsdd.csv`. Then, as a user would, with no hand-edited config (as in `quality.py`):

    deepwright init  --data <that csv> --target digit -o <that folder>/config.yaml
    deepwright train --config <that config> --data <that csv> --output <that folder>/runs --quiet

`init` sees that `path` holds audio files and that `split` is the split column: it picks the default audio encoder,
the audio training schedule and augmentation, and holds out 10% of the training rows as validation (for early
stopping); `speaker` becomes a category input beside the audio. Test accuracy comes from the run's `metrics.json`;
training time is the `train` command's wall time (beside its epochs and the share of the CPUs other processes used).

The cache: every clip is read, mixed down, resampled and padded once, and the result is kept in a memory-mapped
file under the run's `.cache` folder. This script times, with the run's own fitted preprocessing, that first pass
over all 3,000 clips (cold: decoding and writing the cache) against a later pass (warm: reading it back), and the
decoding one training epoch would cost without the cache (the training clips decoded batch by batch, as the lazy
path does beyond `cache_memory_mb`), beside the run's first and later epoch times.

Goal: test accuracy ≥ 0.98. References (data README): a log-spectrogram (32 bands × 16 frames) RBF-SVC gets 0.967
on this split; sound-mnist's MFCC CNN 0.97 (on an older 1,500-clip release, random 90/10 split).

    .venv/bin/python benchmarks/audio_quality.py [--data-dir /tmp/deepwright-bench]
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from _common import SHARED_DATA_DIR, base_parser, emit, environment, log, median
from quality import Dataset, evaluate_all

GOAL = ("accuracy", ">=", 0.98)
MANIFEST = "fsdd/manifest.csv"
LAZY_BATCH = 64  # the default audio batch size


def absolute_paths(frame: pd.DataFrame, folder: Path) -> pd.DataFrame:
    """The manifest with each clip's path made absolute (the CSV is written elsewhere than the clips)."""
    clips = SHARED_DATA_DIR / "fsdd"
    return frame.assign(path=[str(clips / path) for path in frame["path"]])


FSDD = Dataset(
    "fsdd",
    "digit",
    lambda: pd.read_csv(SHARED_DATA_DIR / MANIFEST),
    files=(MANIFEST,),
    has_split=True,
    goal=GOAL,
    references={
        "log_spectrogram_rbf_svc (data README)": {"accuracy": 0.967},
        "sound_mnist_mfcc_cnn (published, other protocol)": {"accuracy": 0.97},
    },
    materialise=absolute_paths,
)


def cache_timings(run_dir: Path, csv: Path) -> dict[str, Any]:
    """Seconds to preprocess every clip with the run's fitted audio preprocessing: cold (decode and write the
    cache), warm (read the cache back), and one epoch's training clips decoded batch by batch without a cache."""
    import numpy as np

    from deepwright.config import load_config
    from deepwright.data.media import resolve_paths
    from deepwright.features.audio import AudioFeature

    config = load_config(run_dir / "config.yaml")
    options = next(feature for feature in config.input_features if feature.type == "audio")
    state = json.loads((run_dir / "preprocessing.json").read_text(encoding="utf-8"))["inputs"][options.name]
    frame = pd.read_csv(csv)
    cells = resolve_paths(frame[options.name].to_numpy(dtype=object), csv.parent)
    train_cells = cells[(frame["split"] == "train").to_numpy()]

    def feature(cache_dir: Path | None, **changes: Any) -> AudioFeature:
        audio = AudioFeature(options.model_copy(update=changes), "input")
        audio.load_state(state)
        audio.cache_dir = cache_dir
        return audio

    folder = Path(tempfile.mkdtemp(prefix="audio-cache-"))
    try:
        started = time.perf_counter()
        cold = feature(folder).transform(cells)
        cold_s = time.perf_counter() - started
        started = time.perf_counter()
        warm = np.array(feature(folder).transform(cells))  # read every byte back, not just map the file
        warm_s = time.perf_counter() - started
        if not np.array_equal(cold, warm):
            raise SystemExit("error: the cache read back differs from what was decoded")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    lazy = feature(None, cache_memory_mb=0).transform(train_cells)
    started = time.perf_counter()
    for start in range(0, len(lazy), LAZY_BATCH):
        lazy[start : start + LAZY_BATCH]
    lazy_s = time.perf_counter() - started
    history = [json.loads(line) for line in (run_dir / "log.jsonl").read_text(encoding="utf-8").splitlines()]
    epochs = [record["seconds"] for record in history]
    return {
        "clips": len(cells),
        "cold_s": round(cold_s, 2),
        "warm_s": round(warm_s, 3),
        "speedup_warm_vs_cold": round(cold_s / warm_s, 1),
        "decode_per_epoch_without_cache_s": round(lazy_s, 2),
        "first_epoch_s": round(epochs[0], 2),
        "later_epochs_median_s": round(median(epochs[1:]), 2) if len(epochs) > 1 else None,
    }


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0], repeats=None)
    args = parser.parse_args()
    folder = args.data_dir / "audio_quality"
    rows, skipped = evaluate_all([FSDD], folder, args.wait_quiet)
    for row in rows:
        log("timing the decoded-clip cache …")
        row["cache"] = cache_timings(Path(row["config"]).parent, folder / "fsdd" / "fsdd.csv")
        log(f"cache: {row['cache']}")
    emit(
        {
            "benchmark": "audio_quality",
            "compares": "deepwright init + train (CLI, inferred audio config) test accuracy on FSDD's official split "
            "vs ../shared/data/README.md reference models",
            "goal": f"test accuracy >= {GOAL[2]}",
            "results": rows,
            "skipped": skipped,
            "environment": environment(),
        }
    )


if __name__ == "__main__":
    main()
