"""The table kind (`model_type: ecd`): encoders → combiner → heads over the columns of a table — numbers,
categories, text, sequences, images, audio — trained by epochs; its predictor serves raw rows and exports to ONNX.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepwright.data.clean import CleaningReport, drop_incomplete_rows
from deepwright.data.io import Table, read_table
from deepwright.data.split import Split, split_rows
from deepwright.errors import ConfigError, DataError
from deepwright.kinds.rows import RowModelKind

__all__ = ["ExportReport", "PreparedRows", "TableKind", "prepare_rows"]


@dataclass
class ExportReport:
    """What `Pipeline.export` wrote and measured: the ONNX graph (an `OnnxExport`), the int8 graph (a
    `Quantized`) if asked for, and the metrics of PyTorch and of the int8 graph on the same rows."""

    onnx: Any
    quantized: Any = None
    evaluated_on: str | None = None
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # {"torch": {…}, "int8": {…}}


@dataclass
class PreparedRows:
    """The cleaned frame, its cleaning report, and its split."""

    frame: Any
    cleaning: CleaningReport
    split: Split
    base_dir: Path

    def columns(self, features: Any, split_name: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The raw columns of one split's rows, and their row numbers (for error messages)."""
        return features.columns_of(self.frame, self.base_dir, rows=getattr(self.split, split_name))

    def tensors(self, features: Any, split_name: str, source: str) -> dict:
        """One split's inputs and outputs as tensors ({} for an empty split)."""
        from deepwright.data.batches import to_tensors

        if len(getattr(self.split, split_name)) == 0:
            return {}
        columns, row_numbers = self.columns(features, split_name)
        inputs = features.transform_inputs(columns, row_numbers=row_numbers, source=source)
        outputs = features.transform_outputs(columns, row_numbers=row_numbers, source=source)
        return {**to_tensors(inputs), **to_tensors(outputs)}


def prepare_rows(config: Any, table: Table) -> PreparedRows:
    """Check columns, drop incomplete rows, and split (seeded; stratified on a first output that is a class)."""
    table.require_columns([feature.name for feature in config.output_features], "output")
    table.require_columns([feature.name for feature in config.input_features], "input")
    frame, cleaning = drop_incomplete_rows(table.frame, config)
    if len(frame) == 0:
        raise DataError(f"no rows left after cleaning ({cleaning.summary()})", source=table.source)
    first_output = config.output_features[0]
    stratify_on = first_output.name if first_output.type in ("binary", "category") else None
    split = split_rows(frame, config.preprocessing.split, stratify_on=stratify_on, source=table.source)
    return PreparedRows(frame, cleaning, split, table.base_dir)


class TableKind(RowModelKind):
    """Tables, images, audio, text and sequences: one row in, one prediction per output out."""

    name = "ecd"

    def prepare(self, config: Any, table: Table) -> PreparedRows:
        """See `prepare_rows`."""
        return prepare_rows(config, table)

    def features(self, config: Any, cache_dir: Path) -> Any:
        """A `FeatureSet` of the config's inputs and outputs."""
        from deepwright.features.featureset import FeatureSet

        return FeatureSet(config, cache_dir=cache_dir)

    def new_predictor(self, config: Any, features: Any, model: Any) -> Any:
        """A `Predictor` over the fitted features and the trained model."""
        from deepwright.deploy.predictor import Predictor

        return Predictor(config, features, model)

    def extra_plots(self, run_dir: Path, features: Any, model: Any, test: dict, batch_size: int) -> list[Path]:
        """A grid of misclassified test images for each image input and classification output."""
        from deepwright.evaluation.run_plots import write_misclassified

        return write_misclassified(run_dir, features, model, test, batch_size)

    def load(self, path: str | Path, *, runtime: str, onnx_path: str | Path | None) -> Any:
        """The bundle's `Predictor`, on torch or ONNX Runtime."""
        from deepwright.deploy.predictor import Predictor

        return Predictor.from_bundle(path, runtime=runtime, onnx_path=onnx_path)

    def evaluate(self, predictor: Any, data: Any) -> dict[str, Any]:
        """Metrics on the rows of `data` that hold every output (rows missing an input are kept and imputed)."""
        from deepwright.data.batches import to_tensors

        table = read_table(data)
        table.require_columns(predictor.features.output_names, "output")
        outputs_only = predictor.config.model_copy(update={"input_features": []})  # only outputs drop rows
        frame, _ = drop_incomplete_rows(table.frame, outputs_only)
        if len(frame) == 0:
            raise DataError("no rows with a value in every output column", source=table.source)
        columns, row_numbers = predictor.features.columns_of(frame, table.base_dir)
        targets = predictor.features.transform_outputs(columns, row_numbers=row_numbers, source=table.source)
        logits = predictor.logits(columns, row_numbers, table.source)  # on the predictor's runtime (torch, ONNX)
        return predictor.features.metrics(logits, to_tensors(targets))

    def predict_file(
        self, predictor: Any, data: Any, output: str | Path | None, *, chunk_rows: int, progress: bool
    ) -> int:
        """Predict the file chunk by chunk (bounded memory)."""
        from deepwright.deploy.batch import predict_file

        return predict_file(predictor, data, output, chunk_rows=chunk_rows, progress=progress)

    def export(self, predictor: Any, path: str | Path | None, *, quantize: str | None, data: Any) -> ExportReport:
        """ONNX at `path` (default: the bundle's `model.onnx`) checked against PyTorch on `data` (default: the run's
        test split, else the inputs' example row); with `quantize="int8"` also the int8 graph and both metrics."""
        from deepwright.deploy.onnx import export_onnx

        if quantize not in (None, "int8"):
            raise ConfigError(f"quantize {quantize!r} is not a choice; choices: int8")
        if path is None and predictor.bundle is None:
            raise ConfigError("give the path of the ONNX file: this model was not loaded from a bundle")
        path = Path(path) if path is not None else predictor.bundle.path / "model.onnx"
        table = read_table(data) if data is not None else _test_split(predictor.config, predictor.bundle)
        report = ExportReport(export_onnx(predictor, path, rows=table), evaluated_on=table.source if table else None)
        if quantize:
            self._quantize(predictor, path, table, report)
        return report

    def _quantize(self, predictor: Any, path: Path, table: Table | None, report: ExportReport) -> None:
        """Write the int8 graph beside `path`; with labelled rows, measure PyTorch and int8 on them."""
        from deepwright.deploy.predictor import Predictor
        from deepwright.deploy.quantize import quantize_int8
        from deepwright.deploy.runtimes import OnnxRuntime
        from deepwright.evaluation.report import flatten_metrics

        config = predictor.config
        report.quantized = quantize_int8(path, path.with_name(path.name.removesuffix(".onnx") + ".int8.onnx"))
        if table is not None and all(name in table.frame.columns for name in config.output_names()):
            int8 = Predictor(config, predictor.features, predictor.model, bundle=predictor.bundle)
            int8.runtime = OnnxRuntime(report.quantized.path, batch_size=config.trainer.eval_batch_size)
            report.metrics = {
                "torch": flatten_metrics(self.evaluate(predictor, table)),
                "int8": flatten_metrics(self.evaluate(int8, table)),
            }


def _test_split(config: Any, bundle: Any) -> Table | None:
    """The test rows of the run a bundle was saved in (its `run.json` names the data; the split is seeded, so
    it is the same), or None when the bundle is not in a run directory or its data is gone."""
    from deepwright.errors import DeepwrightError

    run_json = bundle.path.parent / "run.json" if bundle is not None else None
    if run_json is None or not run_json.is_file():
        return None
    try:
        table = read_table(json.loads(run_json.read_text(encoding="utf-8"))["data"])
        prepared = prepare_rows(config, table)
    except (OSError, KeyError, ValueError, DeepwrightError):
        return None
    if len(prepared.split.test) == 0:
        return None
    frame = prepared.frame.iloc[prepared.split.test]
    return Table(frame, f"{table.source} (test split)", table.base_dir)
