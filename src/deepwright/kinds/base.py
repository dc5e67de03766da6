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

from deepwright.errors import ConfigError
from deepwright.runs import TrainResult

__all__ = ["FitRequest", "ModelKind", "refuse", "save_bundle"]


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
