"""PNG plots for a run: learning curves and confusion matrices (matplotlib, no screen needed)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from deepwright.data.io import atomic_path
from deepwright.evaluation.report import distinct_metrics

__all__ = ["plot_confusion_matrix", "plot_learning_curves", "plot_misclassified", "preload_plotting"]


def preload_plotting() -> None:
    """Start importing matplotlib in a background thread, so that the plots at the end of a run find it loaded.

    The import (about a second) then overlaps reading and training, whose heavy work runs outside the GIL.
    """
    threading.Thread(target=_pyplot, name="deepwright-preload-matplotlib", daemon=True).start()


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_learning_curves(history: list[dict[str, float]], path: Path, *, x: str = "epoch") -> None:
    """Training and validation loss per epoch (left) and the validation metrics per epoch (right); `x` names the
    record key on the horizontal axis ('step' for a language model)."""
    plt = _pyplot()
    epochs = [record[x] for record in history]
    figure, (loss_axes, metric_axes) = plt.subplots(1, 2, figsize=(10, 4))
    loss_axes.plot(epochs, [record["train_loss"] for record in history], label="train loss")
    if "val_loss" in history[0]:
        loss_axes.plot(epochs, [record["val_loss"] for record in history], label="validation loss")
    loss_axes.set_xlabel(x)
    loss_axes.set_title("loss")
    loss_axes.legend()
    metrics = [key for key in distinct_metrics(history[0]) if key != "val_loss"]
    for key in metrics[:6]:
        metric_axes.plot(epochs, [record.get(key) for record in history], label=key)
    metric_axes.set_xlabel(x)
    metric_axes.set_title("validation metrics")
    if metrics:
        metric_axes.legend()
    figure.tight_layout()
    _save(figure, path)


def plot_confusion_matrix(labels: list[Any], counts: list[list[int]], title: str, path: Path) -> None:
    """A confusion matrix as a heat map, rows the true class and columns the predicted one, counts written in."""
    plt = _pyplot()
    size = max(4.0, 0.5 * len(labels) + 2)
    figure, axes = plt.subplots(figsize=(size, size))
    image = axes.imshow(counts, cmap="Blues")
    ticks = range(len(labels))
    axes.set_xticks(ticks, [str(label) for label in labels], rotation=45, ha="right")
    axes.set_yticks(ticks, [str(label) for label in labels])
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    highest = max((max(row) for row in counts), default=0)
    if len(labels) <= 30:
        for row, values in enumerate(counts):
            for column, count in enumerate(values):
                colour = "white" if count > highest / 2 else "black"
                axes.text(column, row, str(count), ha="center", va="center", color=colour, fontsize=8)
    figure.colorbar(image, ax=axes, fraction=0.046)
    figure.tight_layout()
    _save(figure, path)


def plot_misclassified(images: Any, truth: Any, predicted: Any, title: str, path: Path) -> None:
    """Up to 25 uint8 images (N, C, H, W) in a grid, each captioned 'true → predicted'."""
    plt = _pyplot()
    count = len(images)
    columns = min(5, max(count, 1))
    rows = max(1, -(-count // columns))
    figure, axes_grid = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.4 * rows), squeeze=False)
    for index, axes in enumerate(axes_grid.flat):
        axes.axis("off")
        if index >= count:
            continue
        picture = images[index]
        picture = picture[0] if picture.shape[0] == 1 else picture.transpose(1, 2, 0)
        axes.imshow(picture, cmap="gray" if picture.ndim == 2 else None, vmin=0, vmax=255)
        axes.set_title(f"{truth[index]} → {predicted[index]}", fontsize=9, color="firebrick")
    figure.suptitle(f"misclassified test images ({title}: true → predicted)" if count else "no misclassified images")
    figure.tight_layout()
    _save(figure, path)


def _save(figure: Any, path: Path) -> None:
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=100)
    _pyplot().close(figure)
