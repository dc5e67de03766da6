"""The plots a run writes into `plots/`: learning curves, a confusion matrix per classification output, and a grid
of misclassified test images per image input (the drawing itself is in `deepwright.evaluation.plots`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deepwright.data.io import safe_name

__all__ = ["write_misclassified", "write_run_plots"]


def write_run_plots(run_dir: Path, history: list[dict], metrics: dict[str, Any], *, x: str = "epoch") -> list[Path]:
    """The learning curves of `history` (over `x`: 'epoch', or 'step' for a language model) and a confusion matrix
    for each output of the test split's `metrics` that has one (the first split's without a test split)."""
    from deepwright.evaluation.plots import plot_confusion_matrix, plot_learning_curves

    plots = []
    if history:
        plots.append(run_dir / "plots" / "learning_curves.png")
        plot_learning_curves(history, plots[-1], x=x)
    split = "test" if "test" in metrics else next(iter(metrics), None)
    for output, results in (metrics.get(split) or {}).items():
        if isinstance(results, dict) and "confusion_matrix" in results:
            matrix = results["confusion_matrix"]
            path = run_dir / "plots" / f"confusion_matrix_{safe_name(output)}.png"
            plot_confusion_matrix(matrix["labels"], matrix["counts"], f"{output} ({split})", path)
            plots.append(path)
    return plots


def write_misclassified(run_dir: Path, features: Any, model: Any, table: dict, batch_size: int) -> list[Path]:
    """For each image input and classification output: a grid of misclassified test images."""
    import torch

    from deepwright.evaluation.plots import plot_misclassified
    from deepwright.models.ecd import predict_logits

    images = [feature.name for feature in features.inputs if feature.options.type == "image"]
    outputs = [feature for feature in features.outputs if feature.options.type in ("binary", "category")]
    if not images or not outputs:
        return []
    logits = predict_logits(model, table, batch_size)
    plots = []
    for output in outputs:
        scores = logits[output.name].numpy()
        predicted = (scores >= 0).astype(np.int64) if scores.ndim == 1 else scores.argmax(axis=1)
        truth = table[output.name].cpu().numpy().astype(np.int64)
        wrong = np.flatnonzero(predicted != truth)[:25]
        labels = np.array([*output.labels_, "(unseen)"], dtype=object)  # index -1: a class unseen in training
        for image in images:
            path = run_dir / "plots" / f"misclassified_{safe_name(image)}_{safe_name(output.name)}.png"
            # a tensor index, which tensors and lazy columns both take
            pictures = table[image][torch.from_numpy(wrong)].cpu().numpy() if len(wrong) else np.zeros((0, 1, 1, 1))
            plot_misclassified(pictures, labels[truth[wrong]], labels[predicted[wrong]], f"{output.name}", path)
            plots.append(path)
    return plots
