"""Inferring a config from a table: a type for each column, a split, and training options sized to the data.

The model is the seed document's: one hidden Dense layer of 128 with ReLU, Adam at 1e-3, batch 32. The number
of epochs and the early-stopping patience follow from the number of training rows, so small tables get enough
optimizer steps and large ones do not waste time. Every choice worth knowing is returned as a note.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepwright.config import checkpoint_folder
from deepwright.data.clean import missing_mask
from deepwright.data.io import Table
from deepwright.data.split import normalize_split_value
from deepwright.errors import ConfigError, DataError

__all__ = [
    "Inference",
    "find_split_column",
    "infer_column_type",
    "infer_config",
    "infer_target_type",
    "is_skewed",
    "pretrained_text",
    "text_length",
    "training_schedule",
]

_IDENTIFIER_NAME = re.compile(r"(^|_|\b)(id|uuid|guid|key)$|Id$|ID$", re.IGNORECASE)
MAX_CATEGORY_SHARE = 0.5  # a string column with more distinct values than this share of rows is not a category
MAX_TARGET_CLASSES = 20  # an integer target with at most this many values is a classification target
TARGET_STEPS = 40_000  # optimizer steps a default run plans for, within the epoch bounds below
MIN_EPOCHS, MAX_EPOCHS = 20, 300
MIN_TEXT_WORDS = 3  # a many-valued string column with at least this many words per value on average is text
MAX_TEXT_LENGTH = 2048  # the most tokens per text `init` keeps
_WORD_TOKENS = re.compile(r"\w+|[^\w\s]")  # what the word tokenizer splits a text into
SKEWED = 2.0  # a non-negative number column with a skewness above this is log-scaled…
MIN_LOG_VALUES = 30  # …when it also has this many distinct values (not a count or a pixel with a few levels)
BATCH_SIZE = 32
# Fine-tuning a pretrained text encoder (`init --pretrained`): a few epochs of AdamW, a warm-up then a linear
# decay, clipped gradients (BERT's recipe); the new layers learn at 1e-3, the pretrained weights at PRETRAINED_LR.
PRETRAINED_LR = 3e-5
PRETRAINED_TRAINER = {
    "epochs": 4,
    "batch_size": 16,
    "optimizer": {"type": "adamw", "lr": 0.001, "weight_decay": 0.01},
    "schedule": {"type": "linear", "warmup_fraction": 0.1},
    "gradient_clip": 1.0,
}
# Inputs whose steps cost far more than a table row's: a fixed number of epochs with the learning rate decayed
# to zero along a cosine (steadier than a constant rate with batch norm), instead of the step budget.
MEDIA_SCHEDULES = {
    "image": {"epochs": 20, "batch_size": 64, "patience": 10, "schedule": "cosine"},
    "audio": {"epochs": 30, "batch_size": 64, "patience": 10, "schedule": "cosine"},
}
# Sound: shifts of up to a tenth of a second, background noise, and SpecAugment's masks (narrow enough to leave
# most of a short word).
AUDIO_AUGMENTATION = {
    "time_shift": {"probability": 0.5, "seconds": 0.1},
    "noise": {"probability": 0.5, "snr_db": [10, 30]},
    "time_mask": {"probability": 0.5, "count": 2, "width": 8},
    "frequency_mask": {"probability": 0.5, "count": 2, "width": 5},
}
# Safe for most images, digits and text included: no flips, which would turn a 2 into a mirrored 2. The padding
# of the crop is set per column, from the size of its first image.
IMAGE_AUGMENTATION = {
    "padded_crop": {"probability": 0.5, "padding": 2},
    "rotation": {"probability": 0.5, "degrees": 10},
}


@dataclass
class Inference:
    """An inferred config (plain data, ready for YAML) and the notes explaining it."""

    config: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def infer_config(table: Table, target: str, pretrained: str | Path | None = None) -> Inference:
    """A config for predicting `target` from the other columns of `table`; with `pretrained` (a local checkpoint
    folder), every text column is read by that checkpoint's encoder, fine-tuned as `PRETRAINED_TRAINER` says."""
    table.require_columns([target], "target")
    frame = table.frame
    notes: list[str] = []
    target_values = frame[target].to_numpy()
    target_type = infer_target_type(target_values)
    if target_type is None:
        raise DataError(
            "has fewer than two distinct values; a target needs at least two classes or varying numbers",
            column=target,
            source=table.source,
        )
    split_column = find_split_column(frame)
    inputs = []
    for column in frame.columns:
        if column in (target, split_column):
            continue
        kind, reason = infer_column_type(frame[column].to_numpy(), str(column))
        if kind is None:
            notes.append(f"left out {column!r}: {reason}")
        else:
            inputs.append({"name": str(column), "type": kind})
            if kind == "number" and is_skewed(frame[column].to_numpy()):
                inputs[-1]["normalization"] = "log"
                notes.append(f"log-scaled {column!r}: non-negative and skewed")
            if kind == "text" and pretrained is not None:
                inputs[-1].update(pretrained_text(frame[column].to_numpy(), pretrained))
                notes.append(
                    f"{column!r}: the pretrained encoder of {str(pretrained)!r}, up to {inputs[-1]['max_length']} "
                    "tokens per text (longer texts lose their end)"
                )
            elif kind == "text":
                inputs[-1]["max_length"] = text_length(frame[column].to_numpy())
                notes.append(f"{column!r}: up to {inputs[-1]['max_length']} tokens per text (99% of them fit)")
    if not inputs:
        raise DataError("no usable input columns besides the target; add feature columns", source=table.source)
    rows = int((~missing_mask(target_values)).sum())
    if split_column is not None:
        split = {"method": "column", "column": split_column}
        train_rows = int(sum(normalize_split_value(value) == "train" for value in frame[split_column]) * 0.9)
        notes.append(f"split: by the existing column {split_column!r}")
    else:
        method = "random" if target_type == "number" else "stratified"
        split = {"method": method, "fractions": [0.8, 0.1, 0.1], "seed": 42}
        train_rows = int(rows * 0.8)
        notes.append(f"split: {method} 80/10/10 with seed 42")
    if pretrained is not None and not any(feature["type"] == "text" for feature in inputs):
        raise DataError(f"--pretrained {str(pretrained)!r} reads text, and no column is text", source=table.source)
    if pretrained is not None:
        notes.append(
            "pretrained text encoder → 4 epochs at batch 16, AdamW (pretrained weights at 3e-05, new layers at "
            "1e-03), 10% warm-up then linear decay, gradients clipped at 1.0"
        )
    if any(feature["type"] in MEDIA_SCHEDULES for feature in inputs):
        kind = next(feature["type"] for feature in inputs if feature["type"] in MEDIA_SCHEDULES)
        plan = MEDIA_SCHEDULES[kind]
        epochs, patience, batch_size, schedule = plan["epochs"], plan["patience"], plan["batch_size"], plan["schedule"]
        notes.append(f"{kind} inputs → {epochs} epochs at batch {batch_size}, {schedule} learning-rate decay")
        for feature in inputs:
            if feature["type"] == "image":
                padding = _shift_for(frame[feature["name"]].dropna().iloc[0], table)
                feature["augmentation"] = {name: dict(options) for name, options in IMAGE_AUGMENTATION.items()}
                feature["augmentation"]["padded_crop"]["padding"] = padding
                notes.append(
                    f"augmenting {feature['name']!r} in training: shifts of up to {padding} px and rotations of up "
                    "to 10° (no flips, which would mirror digits and letters)"
                )
            elif feature["type"] == "audio":
                feature["augmentation"] = {name: dict(options) for name, options in AUDIO_AUGMENTATION.items()}
                notes.append(
                    f"augmenting {feature['name']!r} in training: time shifts, noise at 10-30 dB SNR, and time and "
                    "frequency masks (SpecAugment)"
                )
    else:
        epochs, patience = training_schedule(train_rows)
        batch_size, schedule = BATCH_SIZE, "constant"
        if pretrained is None:  # a pretrained encoder's schedule (said above) replaces this one
            notes.append(
                f"{train_rows} training rows → up to {epochs} epochs, early stopping after {patience} without gain"
            )
    config = {
        "input_features": inputs,
        "output_features": [{"name": str(target), "type": target_type}],
        "combiner": {"type": "concat", "dims": [128], "activation": "relu", "dropout": 0.0},
        "preprocessing": {"split": split},
        "trainer": {
            "epochs": epochs,
            "batch_size": batch_size,
            "optimizer": {"type": "adam", "lr": 0.001},
            "schedule": {"type": schedule},
            "early_stopping": {"metric": "val_loss", "patience": patience},
        },
    }
    if pretrained is not None:
        config["trainer"] = {**PRETRAINED_TRAINER, "early_stopping": {"metric": "val_loss", "patience": 2}}
    return Inference(config, notes)


def pretrained_text(values: np.ndarray, folder: str | Path) -> dict[str, Any]:
    """The options of a text column read by the checkpoint in `folder`: its encoder, and tokens kept per text
    (about 1.3 subword tokens a word, plus the special tokens; at most the checkpoint's positions and 512)."""
    config_path = checkpoint_folder(folder, "--pretrained") / "config.json"
    try:
        positions = json.loads(config_path.read_text(encoding="utf-8")).get("max_position_embeddings", 512)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        raise ConfigError(f"{config_path} is not a readable model config; copy the checkpoint again") from None
    tokens = 2 ** math.ceil(math.log2(text_length(values) * 1.3 + 2))
    encoder = {"type": "pretrained", "path": str(folder), "pooling": "mean", "lr": PRETRAINED_LR}
    return {"encoder": encoder, "max_length": int(min(tokens, positions, 512))}


def training_schedule(train_rows: int) -> tuple[int, int]:
    """(epochs, patience): about `TARGET_STEPS` steps at batch 32, within the epoch bounds; early stopping
    ends most runs well before the last epoch.

    >>> training_schedule(455), training_schedule(30000)
    ((300, 20), (43, 10))
    """
    steps_per_epoch = max(1, math.ceil(train_rows / BATCH_SIZE))
    epochs = int(min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(TARGET_STEPS / steps_per_epoch))))
    patience = int(min(20, max(10, epochs // 10)))
    return epochs, patience


def infer_target_type(values: np.ndarray) -> str | None:
    """binary (two values), category (strings, or whole numbers with few values) or number; None if constant."""
    present = values[~missing_mask(values)]
    uniques = pd.unique(present)
    if len(uniques) < 2:
        return None
    if len(uniques) == 2:
        return "binary"
    numbers = pd.to_numeric(pd.Series(present), errors="coerce")
    if numbers.isna().any():
        return "category"
    whole = bool(np.all(np.mod(numbers.to_numpy(dtype=np.float64), 1) == 0))
    return "category" if whole and len(uniques) <= MAX_TARGET_CLASSES else "number"


def infer_column_type(values: np.ndarray, name: str) -> tuple[str | None, str]:
    """The type of an input column, or (None, why it is left out)."""
    present = values[~missing_mask(values)]
    if len(present) == 0:
        return None, "every value is missing"
    uniques = pd.unique(present)
    if len(uniques) == 1:
        only = uniques[0].item() if isinstance(uniques[0], np.generic) else uniques[0]
        return None, f"a single value ({only!r})"
    if len(uniques) == 2:
        return "binary", "two values"
    media = _media_kind(present)
    if media is not None:
        return media, f"{media} files"
    numbers = pd.to_numeric(pd.Series(present), errors="coerce")
    if not numbers.isna().any():
        array = numbers.to_numpy(dtype=np.float64)
        all_unique = len(uniques) == len(present)
        whole = bool(np.all(np.mod(array, 1) == 0))
        if whole and all_unique and (_IDENTIFIER_NAME.search(name) or np.all(np.diff(array) > 0)):
            return None, "identifier-like (every value unique and increasing, or named like an id)"
        return "number", "numbers"
    if len(uniques) > MAX_CATEGORY_SHARE * len(present) and len(uniques) > 20:
        words = pd.Series(present).astype(str).str.count(r"\w+").mean()
        if words >= MIN_TEXT_WORDS:
            return "text", f"free text ({words:.1f} words on average)"
        return None, f"identifier-like ({len(uniques)} distinct values in {len(present)} rows, {words:.1f} words each)"
    return "category", f"{len(uniques)} distinct values"


def text_length(values: np.ndarray) -> int:
    """Tokens to keep per text: the 99th percentile of the words and punctuation marks per text, rounded up to a
    power of two, from 16 to `MAX_TEXT_LENGTH`.

    >>> text_length(np.array(["a b c"] * 10 + ["word " * 40], dtype=object))
    64
    """
    present = values[~missing_mask(values)]
    counts = [len(_WORD_TOKENS.findall(str(value))) for value in present] or [1]
    longest = float(np.percentile(counts, 99))
    return int(min(MAX_TEXT_LENGTH, max(16, 2 ** math.ceil(math.log2(max(longest, 1.0))))))


def _shift_for(cell: str, table: Table) -> int:
    """Pixels of random shift for an image augmentation: an eighth of the first image's shorter side."""
    from PIL import Image

    path = Path(cell) if Path(cell).is_absolute() else table.base_dir / cell
    try:
        with Image.open(path) as image:
            return max(1, min(image.size) // 8)
    except (OSError, ValueError):
        return 2  # the file is unreadable; training will say so, naming the row


def _media_kind(values: np.ndarray) -> str | None:
    """'image' or 'audio' when every value is a file name with that kind's suffix."""
    from deepwright.data.media import AUDIO_SUFFIXES, IMAGE_SUFFIXES

    if not all(isinstance(value, str) for value in values[:1000]):
        return None
    suffixes = {Path(value.strip()).suffix.lower() for value in values}
    for kind, known in (("image", IMAGE_SUFFIXES), ("audio", AUDIO_SUFFIXES)):
        if suffixes <= known:
            return kind
    return None


def is_skewed(values: np.ndarray) -> bool:
    """Whether a number column is non-negative with a long right tail (sample skewness above `SKEWED`) over
    many distinct values (at least `MIN_LOG_VALUES`): such a column is better log-scaled.

    >>> is_skewed(np.exp(np.arange(40.0) / 4)), is_skewed(np.arange(40.0))
    (True, False)
    """
    numbers = pd.to_numeric(pd.Series(values), errors="coerce").dropna().to_numpy(dtype=np.float64)
    if len(numbers) < 3 or numbers.min() < 0 or numbers.std() == 0 or len(np.unique(numbers)) < MIN_LOG_VALUES:
        return False
    skewness = np.mean((numbers - numbers.mean()) ** 3) / numbers.std() ** 3
    return bool(skewness > SKEWED)


def find_split_column(frame: pd.DataFrame) -> str | None:
    """The column named 'split' (in any case) when all its values are train/validation/test spellings, else None.

    >>> find_split_column(pd.DataFrame({"Split": ["train", "test", "validation"]}))
    'Split'
    >>> print(find_split_column(pd.DataFrame({"split": ["a", "b"]})))
    None
    """
    for column in frame.columns:
        if str(column).lower() == "split":
            values = pd.unique(frame[column].dropna())
            if len(values) and all(normalize_split_value(value) for value in values):
                return str(column)
    return None
