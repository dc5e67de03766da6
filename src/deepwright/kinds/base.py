"""The `ModelKind` contract: what `Pipeline`, `deepwright.load` and the CLI ask of each kind of model.

A kind says how to turn a config and data into a trained run (prepare the data, build the features and the model,
fit), how to load its predictor back from a bundle, and what it can do once fitted (evaluate, predict a file,
export, generate). The predictor a kind loads describes itself to the server (`deepwright.deploy`'s served-model
contract), so the server never needs to know the kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from deepwright.data.io import safe_name
from deepwright.errors import ConfigError
from deepwright.runs import TrainResult, new_run_dir, write_run_start

__all__ = ["FitRequest", "ModelKind", "open_run", "refuse", "save_bundle"]


@dataclass
class FitRequest:
    """Where and how one `Pipeline.fit` call runs: the output folder, the run's name, the run directory to resume,
    whether to show progress, and the paths this call made (a failure removes them)."""

    output_dir: Path
    run_name: str | None = None
    resume_from: Path | None = None
    progress: bool = True
    made: list[Path] = field(default_factory=list)


class ModelKind(Protocol):
    """One kind of model (`model_type` in the config): table/ECD, forecast or language model."""

    name: ClassVar[str]  # the config's model_type
    can_generate: ClassVar[bool]  # writes text (generate) rather than predicting rows

    def fit(self, config: Any, data: Any, request: FitRequest) -> tuple[Any, TrainResult]:
        """Train on `data` and write the run directory (bundle included); return the fitted predictor and the
        result."""
        ...

    def workload(self, config: Any, data: Any, cache_dir: Path) -> Any:
        """What `fit` would train on `data`, built the same way but not trained: a `deepwright.compute.Workload`
        (the model, a first batch, the loss, the optimizer, the steps, the data's sizes), for `deepwright plan`."""
        ...

    def load(self, path: str | Path, *, runtime: str, onnx_path: str | Path | None) -> Any:
        """The predictor of the bundle at `path`, verified against its manifest."""
        ...

    def evaluate(self, predictor: Any, data: Any) -> dict[str, Any]:
        """Metrics of the fitted `predictor` on `data`: {"loss", output → {metric}}."""
        ...

    def predict_file(
        self, predictor: Any, data: Any, output: str | Path | None, *, chunk_rows: int, progress: bool
    ) -> int:
        """Predict every row of `data` and write the predictions as CSV to `output` (stdout when None)."""
        ...

    def export(self, predictor: Any, path: str | Path | None, *, quantize: str | None, data: Any) -> Any:
        """Export the tensor part of the model to ONNX (see `Pipeline.export`)."""
        ...

    def output_types(self, config: Any) -> dict[str, str]:
        """{output name → feature type}, for metric tables."""
        ...


def refuse(message: str) -> Any:
    """Raise the `ConfigError` of an action a kind does not offer (so each refusal reads the same)."""
    raise ConfigError(message)


def save_bundle(config: Any, predictor: Any, path: str | Path, *, plots: list[Path] = ()) -> Path:
    """Write `predictor`'s bundle (config, preprocessing, weights, metrics, plots, manifest) to the folder `path`."""
    from deepwright.config import dump_config
    from deepwright.deploy.bundle import write_bundle

    return write_bundle(
        path,
        config=dump_config(config),
        preprocessing=predictor.preprocessing_state(),
        model=predictor.model,
        metrics=predictor.metrics,
        plots=list(plots),
    )


def open_run(
    request: FitRequest,
    distributed: Any,
    state: Any,
    *,
    name: str,
    config: Any,
    preprocessing: dict,
    source: str,
    facts: dict[str, Any],
) -> Path:
    """The run directory of a fit. Resuming: `request.resume_from`, with `state` continued from its last checkpoint
    and log. Else a new one named after `name`: rank 0 makes it (a failure removes it: `request.made`), writes what a
    run records at its start, and tells the other ranks its path."""
    from deepwright.training.loop import resume_state

    if request.resume_from is not None:
        run_dir = request.resume_from
        resume_state(state, run_dir / "checkpoints" / "last.pt", run_dir / "log.jsonl")
        return run_dir
    run_dir = None
    if distributed.is_main:
        run_dir = new_run_dir(request.output_dir, safe_name(name))
        request.made.append(run_dir)
        write_run_start(run_dir, config, preprocessing, source, facts)
    return distributed.broadcast_object(run_dir)
