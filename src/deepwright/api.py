"""The Python API: `Pipeline` ties the stages together (read → clean → split → features → model → train →
evaluate → bundle) and does no arithmetic of its own. The CLI and the server only call what is here.

>>> import deepwright as dp                                    # doctest: +SKIP
>>> pipe = dp.Pipeline.from_config("config.yaml")             # doctest: +SKIP
>>> result = pipe.fit("train.csv")                            # doctest: +SKIP
>>> pipe.predict({"age": 39, "city": "Lyon"})                 # doctest: +SKIP
>>> pipe.save("model/"); dp.load("model/")                    # doctest: +SKIP
"""

from __future__ import annotations

import datetime
import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from deepwright.config import Config, dump_config, load_config
from deepwright.data.batches import to_device
from deepwright.data.clean import CleaningReport, drop_incomplete_rows
from deepwright.data.io import Table, read_table
from deepwright.data.split import SPLIT_NAMES, Split, split_rows
from deepwright.errors import ConfigError, DataError, NotFittedError

__all__ = ["ExportReport", "Pipeline", "TrainResult", "load", "read_run_json"]


@dataclass
class TrainResult:
    """What a training run produced and where it put it."""

    source: str
    run_dir: Path
    bundle_dir: Path
    metrics: dict[str, Any]
    history: list[dict[str, float]]
    cleaning: CleaningReport
    split_sizes: dict[str, int]
    best_epoch: int | None
    stopped_early: bool
    seconds: float
    plots: list[Path] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)  # set by runs that describe themselves (language models)


@dataclass
class ExportReport:
    """What `Pipeline.export` wrote and measured: the ONNX graph (an `OnnxExport`), the int8 graph (a
    `Quantized`) if asked for, and the metrics of PyTorch and of the int8 graph on the same rows."""

    onnx: Any
    quantized: Any = None
    evaluated_on: str | None = None
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # {"torch": {…}, "int8": {…}}


class Pipeline:
    """A config, and once fitted or loaded, its feature preprocessing and model.

    Build one with `Pipeline.from_config` (then `fit`) or `deepwright.load` (a saved bundle).
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self._predictor = None

    @classmethod
    def from_config(cls, source: str | Path | dict | Config) -> Pipeline:
        """A pipeline for the config at `source` (YAML/JSON path, dict, or `Config`)."""
        return cls(load_config(source))

    # -- training ----------------------------------------------------------------------------------------

    def fit(
        self,
        data: Any,
        *,
        output_dir: str | Path = "runs",
        run_name: str | None = None,
        resume_from: str | Path | None = None,
        progress: bool = True,
    ) -> TrainResult:
        """Train on `data` (a path, DataFrame or Arrow table) and write the run directory.

        The run directory (`output_dir/<name>/`) gets the resolved config, the JSON-lines log, a checkpoint
        per epoch, plots, `metrics.json` for the validation and test splits, a report and the bundle
        (`model/`). With `resume_from` (a run directory), training continues from its last checkpoint.

        A mistake in the data found on the way (even one found only while training, such as an image that
        fails to decode) leaves nothing behind: the new run directory, and the output and cache folders if
        this call made them, are removed.
        """
        import shutil

        from deepwright.errors import DeepwrightError

        output_dir = Path(output_dir)
        made: list[Path] = [path for path in (output_dir, output_dir / ".cache") if not path.exists()]
        try:
            if self.config.model_type == "lm":
                from deepwright.language import fit_language_model

                return fit_language_model(self, data, output_dir, run_name, resume_from, progress, made)
            return self._fit(data, output_dir, run_name, resume_from, progress, made)
        except DeepwrightError:
            if resume_from is None:
                for path in reversed(made):
                    shutil.rmtree(path, ignore_errors=True)
            raise

    def _fit(
        self,
        data: Any,
        output_dir: Path,
        run_name: str | None,
        resume_from: str | Path | None,
        progress: bool,
        made: list[Path],
    ) -> TrainResult:
        import torch

        from deepwright.evaluation.plots import preload_plotting
        from deepwright.training.checkpoint import load_checkpoint
        from deepwright.training.threads import training_threads
        from deepwright.training.trainer import check_options, create_state, fit

        started = time.perf_counter()
        preload_plotting()
        options = self.config.trainer
        table = read_table(data)
        prepared = _prepare(self.config, table)
        features = _feature_set(self.config, output_dir / ".cache")
        run_dir = Path(resume_from) if resume_from is not None else None
        if run_dir is not None:
            features.load_state(read_run_json(run_dir, "preprocessing.json"))
        else:
            columns, row_numbers = prepared.columns(features, "train")
            features.fit(columns, row_numbers=row_numbers, source=table.source)
        tables = {name: prepared.tensors(features, name, table.source) for name in SPLIT_NAMES}
        torch.manual_seed(options.seed)
        model = features.build_model()
        torch.set_num_threads(training_threads(model, options.batch_size, options.threads))
        device = _device(options.device)
        model.to(device)
        tables = {name: to_device(split, device) for name, split in tables.items()}

        state = create_state(model, options, len(prepared.split.train))

        def validate(model: Any, split: dict) -> dict[str, float]:
            return _flat_metrics(features, model, split, options.eval_batch_size)

        check_options(state, tables["validation"] or None, options, validate)  # before anything is written
        if run_dir is None:
            run_dir = _new_run_dir(output_dir, _safe_name(run_name or self.config.name or table.source))
            made.append(run_dir)
            split = {"method": prepared.split.method, **prepared.split.sizes()}
            facts = {"cleaning": prepared.cleaning.to_dict(), "split": split}
            _write_run_start(run_dir, self.config, features.state(), table.source, facts)
        else:
            log_path = run_dir / "log.jsonl"
            state.restore(load_checkpoint(run_dir / "checkpoints" / "last.pt"), _read_log(log_path))
            # Epochs logged after the last checkpoint are trained again: drop their lines.
            log_path.write_text("".join(json.dumps(record) + "\n" for record in state.history), encoding="utf-8")
        fit(
            state,
            tables["train"],
            tables["validation"] or None,
            options=options,
            loss_fn=features.loss,
            validate=validate,
            log_path=run_dir / "log.jsonl",
            checkpoint_path=run_dir / "checkpoints" / "last.pt" if options.checkpoint else None,
            progress=progress,
        )
        model.to("cpu")
        self._predictor = _new_predictor(self.config, features, model)
        metrics = {
            name: self._metrics_of(tables[name])
            for name in ("validation", "test")
            if len(getattr(prepared.split, name))
        }
        self._predictor.metrics = metrics
        plots = _write_plots(run_dir, state.history, metrics)
        if tables["test"]:
            plots += _write_misclassified(run_dir, features, model, tables["test"], options.eval_batch_size)
        bundle_dir = self.save(run_dir / "model", plots=plots)
        from deepwright.evaluation.report import format_metrics_table, write_json, write_report

        write_json(run_dir / "metrics.json", metrics)
        result = TrainResult(
            source=table.source,
            run_dir=run_dir,
            bundle_dir=bundle_dir,
            metrics=metrics,
            history=state.history,
            cleaning=prepared.cleaning,
            split_sizes=prepared.split.sizes(),
            best_epoch=state.best_epoch if options.early_stopping else None,
            stopped_early=state.stopped_early,
            seconds=time.perf_counter() - started,
            plots=plots,
        )
        if metrics:
            write_report(
                run_dir / "report.md",
                title=f"deepwright run {run_dir.name}",
                summary=_summary_lines(result),
                table=format_metrics_table(metrics, self.output_types()),
                images=[plot.relative_to(run_dir).as_posix() for plot in plots],
            )
        return result

    # -- using a fitted model ----------------------------------------------------------------------------

    @property
    def predictor(self) -> Any:
        """The fitted `Predictor` (after `fit` or `deepwright.load`)."""
        if self._predictor is None:
            raise NotFittedError("this pipeline has no model yet; call fit(data) or load a bundle with deepwright.load")
        return self._predictor

    def predict(self, rows: Any) -> Any:
        """Predict raw rows: a dict → a dict, a list of dicts → a list, a DataFrame, Arrow table or file → a
        DataFrame."""
        return self.predictor.predict(rows)

    def evaluate(self, data: Any) -> dict[str, Any]:
        """Metrics of the model on `data`, which must hold the output columns: {"loss", output → {metric}}.

        Rows whose output is empty are left out. A language model measures its loss and perplexity on the text of
        `data` (a text file, folder or table, read like its corpus).
        """
        from deepwright.data.batches import to_tensors

        predictor = self.predictor
        if self.config.model_type in ("lm", "forecast"):
            return predictor.evaluate(data)
        table = read_table(data)
        table.require_columns(predictor.features.output_names, "output")
        frame, _ = drop_incomplete_rows(table.frame, _outputs_only(self.config))
        if len(frame) == 0:
            raise DataError("no rows with a value in every output column", source=table.source)
        columns, row_numbers = predictor.features.columns_of(frame, table.base_dir)
        targets = predictor.features.transform_outputs(columns, row_numbers=row_numbers, source=table.source)
        logits = predictor.logits(columns, row_numbers, table.source)  # on the predictor's runtime (torch, ONNX)
        return predictor.features.metrics(logits, to_tensors(targets))

    def predict_file(
        self, data: Any, output: str | Path | None = None, *, chunk_rows: int = 10_000, progress: bool = True
    ) -> int:
        """Predict every row of the file `data` chunk by chunk (bounded memory) and write the predictions as CSV
        to `output` (standard output when None); return the number of rows."""
        from deepwright.deploy.batch import predict_file

        if self.config.model_type == "forecast":  # a forecast reads the whole history at once
            return _write_forecast(self.predictor.predict(data), output)
        self._refuse_language_model("predict")
        return predict_file(self.predictor, data, output, chunk_rows=chunk_rows, progress=progress)

    def export(self, path: str | Path | None = None, *, quantize: str | None = None, data: Any = None) -> ExportReport:
        """Export the tensor part of the model to ONNX at `path` (default: the bundle's `model.onnx`), checked
        with onnx.checker and against PyTorch on `data` (default: the run's test split when the bundle sits in
        its run directory, else the inputs' example row). With `quantize="int8"`, also write the dynamic int8
        graph beside it (`model.int8.onnx`) and measure the metrics of PyTorch and of int8 on those rows."""
        from deepwright.deploy.onnx import OnnxRuntime, export_onnx
        from deepwright.deploy.predictor import Predictor
        from deepwright.evaluation.report import flatten_metrics

        predictor = self.predictor
        self._refuse_language_model("export")
        if self.config.model_type == "forecast":
            raise ConfigError("export covers table models; a forecast runs from its bundle (deepwright predict)")
        if quantize not in (None, "int8"):
            raise ConfigError(f"quantize {quantize!r} is not a choice; choices: int8")
        if path is None and predictor.bundle is None:
            raise ConfigError("give the path of the ONNX file: this model was not loaded from a bundle")
        path = Path(path) if path is not None else predictor.bundle.path / "model.onnx"
        table = read_table(data) if data is not None else _test_split(self.config, predictor.bundle)
        report = ExportReport(export_onnx(predictor, path, rows=table), evaluated_on=table.source if table else None)
        if quantize:
            from deepwright.deploy.quantize import quantize_int8

            report.quantized = quantize_int8(path, path.with_name(path.name.removesuffix(".onnx") + ".int8.onnx"))
            if table is not None and all(name in table.frame.columns for name in self.config.output_names()):
                int8 = Predictor(self.config, predictor.features, predictor.model, bundle=predictor.bundle)
                int8.runtime = OnnxRuntime(report.quantized.path, batch_size=self.config.trainer.eval_batch_size)
                twin = Pipeline(self.config)
                twin._predictor = int8
                report.metrics = {
                    "torch": flatten_metrics(self.evaluate(table)),
                    "int8": flatten_metrics(twin.evaluate(table)),
                }
        return report

    def generate(
        self,
        prompt: str,
        *,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        stop: list[str] | None = None,
        stream: bool = False,
    ) -> Any:
        """A language model's continuation of `prompt`: the text, or with `stream=True` a `Generation` that yields
        it piece by piece as it is written (its `notes` say what was done to the prompt). Unset options take the
        config's `generation` defaults; `top_k=0` and `top_p=1` turn those cuts off; a `seed` repeats a text.

        >>> dp.load("runs/shakespeare/model").generate("ROMEO:", max_new_tokens=50, seed=1)  # doctest: +SKIP
        """
        if self.config.model_type != "lm":
            raise ConfigError("only a language model (model_type: lm) generates text; use predict")
        options = {"max_new_tokens": max_new_tokens, "temperature": temperature, "top_k": top_k, "top_p": top_p}
        generation = self.predictor.stream(prompt, seed=seed, stop=stop, **options)
        return generation if stream else "".join(generation)

    def _refuse_language_model(self, action: str) -> None:
        if self.config.model_type == "lm":
            raise ConfigError(f"this bundle is a language model: it writes text and cannot {action} rows; use generate")

    @property
    def can_generate(self) -> bool:
        """Whether this pipeline writes text (a language model) rather than predicting rows."""
        return self.config.model_type == "lm"

    def save(self, path: str | Path, *, plots: list[Path] = ()) -> Path:
        """Write the bundle (config, preprocessing, weights, metrics, manifest) to the directory `path`."""
        from deepwright.deploy.bundle import write_bundle

        predictor = self.predictor
        return write_bundle(
            path,
            config=dump_config(self.config),
            preprocessing=predictor.preprocessing_state(),
            model=predictor.model,
            metrics=predictor.metrics,
            plots=list(plots),
        )

    def output_types(self) -> dict[str, str]:
        """{output name → feature type}; a language model's one output is the next token."""
        if self.config.model_type == "lm":
            return {"next_token": "lm"}
        return {feature.name: feature.type for feature in self.config.output_features}

    def _metrics_of(self, table: dict) -> dict[str, Any]:
        from deepwright.models.ecd import predict_logits

        features = self.predictor.features
        model = self.predictor.model
        logits = predict_logits(model, table, self.config.trainer.eval_batch_size)
        return features.metrics(logits, table)


def load(path: str | Path, *, runtime: str = "torch", onnx_path: str | Path | None = None) -> Pipeline:
    """Load a saved bundle directory as a fitted `Pipeline` (verifying every file against its manifest).

    With `runtime="onnx"`, the model runs on ONNX Runtime (see `Predictor.from_bundle`); preprocessing is the same.
    """
    from deepwright.deploy.predictor import Predictor

    if _is_language_model(path):
        from deepwright.deploy.generator import TextGenerator

        if runtime != "torch":
            raise ConfigError(f"a language model runs on torch only, not {runtime!r}")
        predictor = TextGenerator.from_bundle(path)
    elif _bundle_model_type(path) == "forecast":
        from deepwright.deploy.forecaster import Forecaster

        if runtime != "torch":
            raise ConfigError(f"a forecast runs on torch only, not {runtime!r}")
        predictor = Forecaster.from_bundle(path)
    else:
        predictor = Predictor.from_bundle(path, runtime=runtime, onnx_path=onnx_path)
    pipeline = Pipeline(predictor.config)
    pipeline._predictor = predictor
    return pipeline


def _is_language_model(path: str | Path) -> bool:
    """Whether the bundle at `path` holds a language model (a glance at config.json; loading verifies it)."""
    return _bundle_model_type(path) == "lm"  # not readable (None): loading it as a table model says why


# -- stages ------------------------------------------------------------------------------------------------


@dataclass
class _Prepared:
    """The cleaned frame, its cleaning report, and its split."""

    frame: Any
    cleaning: CleaningReport
    split: Split
    base_dir: Path

    def columns(self, features: Any, split_name: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
        return features.columns_of(self.frame, self.base_dir, rows=getattr(self.split, split_name))

    def tensors(self, features: Any, split_name: str, source: str) -> dict:
        from deepwright.data.batches import to_tensors

        if len(getattr(self.split, split_name)) == 0:
            return {}
        columns, row_numbers = self.columns(features, split_name)
        inputs = features.transform_inputs(columns, row_numbers=row_numbers, source=source)
        outputs = features.transform_outputs(columns, row_numbers=row_numbers, source=source)
        return {**to_tensors(inputs), **to_tensors(outputs)}


def _prepare(config: Config, table: Table) -> _Prepared:
    """Check columns, drop incomplete rows, and split (seeded). A forecast's series is put in time order, split in
    time and cut into windows instead (`deepwright.features.forecast.prepare_series`)."""
    if config.model_type == "forecast":
        from deepwright.features.forecast import prepare_series

        return prepare_series(config, table)
    table.require_columns([feature.name for feature in config.output_features], "output")
    table.require_columns([feature.name for feature in config.input_features], "input")
    frame, cleaning = drop_incomplete_rows(table.frame, config)
    if len(frame) == 0:
        raise DataError(f"no rows left after cleaning ({cleaning.summary()})", source=table.source)
    first_output = config.output_features[0]
    stratify_on = first_output.name if first_output.type in ("binary", "category") else None
    split = split_rows(frame, config.preprocessing.split, stratify_on=stratify_on, source=table.source)
    return _Prepared(frame, cleaning, split, table.base_dir)


def _test_split(config: Config, bundle: Any) -> Table | None:
    """The test rows of the run a bundle was saved in (its `run.json` names the data; the split is seeded, so
    it is the same), or None when the bundle is not in a run directory or its data is gone."""
    from deepwright.errors import DeepwrightError

    run_json = bundle.path.parent / "run.json" if bundle is not None else None
    if run_json is None or not run_json.is_file():
        return None
    try:
        table = read_table(json.loads(run_json.read_text(encoding="utf-8"))["data"])
        prepared = _prepare(config, table)
    except (OSError, KeyError, ValueError, DeepwrightError):
        return None
    if len(prepared.split.test) == 0:
        return None
    frame = prepared.frame.iloc[prepared.split.test]
    return Table(frame, f"{table.source} (test split)", table.base_dir)


def _feature_set(config: Any, cache_dir: Path) -> Any:
    """The preprocessing of `config`'s columns: a `FeatureSet`, or for a forecast its `ForecastFeatures`."""
    if config.model_type == "forecast":
        from deepwright.features.forecast import ForecastFeatures

        return ForecastFeatures(config, cache_dir=cache_dir)
    from deepwright.features.featureset import FeatureSet

    return FeatureSet(config, cache_dir=cache_dir)


def _new_predictor(config: Any, features: Any, model: Any) -> Any:
    """The predictor of a freshly trained model: a `Predictor`, or for a forecast a `Forecaster`."""
    if config.model_type == "forecast":
        from deepwright.deploy.forecaster import Forecaster

        return Forecaster(config, features, model)
    from deepwright.deploy.predictor import Predictor

    return Predictor(config, features, model)


def _bundle_model_type(path: str | Path) -> str | None:
    """The model_type in a bundle's config.json (a glance; loading verifies the bundle), None when unreadable."""
    try:
        return json.loads((Path(path) / "config.json").read_text(encoding="utf-8")).get("model_type", "ecd")
    except (OSError, ValueError, AttributeError):
        return None


def _write_forecast(predictions: Any, output: str | Path | None) -> int:
    """Write a forecast's rows as CSV to `output` (atomically; standard output when None); return the count."""
    import sys

    from deepwright.data.io import atomic_path

    if output is None:
        predictions.to_csv(sys.stdout, index=False)
    else:
        with atomic_path(output) as temporary:
            predictions.to_csv(temporary, index=False)
    return len(predictions)


def _flat_metrics(features: Any, model: Any, table: dict, batch_size: int) -> dict[str, float]:
    from deepwright.evaluation.report import flatten_metrics
    from deepwright.models.ecd import predict_logits

    logits = predict_logits(model, table, batch_size)
    return flatten_metrics(features.metrics(logits, table))


def _outputs_only(config: Config) -> Config:
    """The config with no input dropping rows: evaluation only drops rows missing an output."""
    return config.model_copy(update={"input_features": []})


def _device(choice: str) -> Any:
    import torch

    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        from deepwright.errors import ConfigError

        raise ConfigError("trainer.device is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'")
    return torch.device(choice)


_DATA_SUFFIXES = (".gz", ".bz2", ".zst", ".csv", ".tsv", ".tab", ".parquet", ".pq", ".jsonl", ".ndjson", ".json")


def _safe_name(source: str) -> str:
    """A file or folder name from a data path or a run name: its last part, without data suffixes, with
    anything but letters, digits, '-', '_' and inner dots replaced, so it cannot leave its folder.

    >>> _safe_name("data/titanic.csv"), _safe_name("../escaped"), _safe_name("exp/one")
    ('titanic', 'escaped', 'one')
    """
    name = Path(str(source).replace("\\", "/")).name
    for suffix in _DATA_SUFFIXES:
        name = name.removesuffix(suffix)
    name = "".join(character if character.isalnum() or character in "-_." else "_" for character in name)
    return name.strip(".") or "run"


def _read_log(path: Path) -> list[dict[str, float]]:
    """The epoch records of a run's log.jsonl (none when it is missing)."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_run_json(run_dir: Path, name: str) -> Any:
    """A JSON file of a run directory (run.json, preprocessing.json…), or a `DataError` if it is not a run."""
    path = Path(run_dir) / name
    if not path.is_file():
        raise DataError(f"not found; {run_dir} is not a run directory written by 'deepwright train'", source=str(path))
    return json.loads(path.read_text(encoding="utf-8"))


def _new_run_dir(output_dir: Path, name: str) -> Path:
    """`output_dir/name`, or `name-2`, `name-3`… when taken; created empty."""
    output_dir.mkdir(parents=True, exist_ok=True)
    candidate, number = output_dir / name, 1
    while True:
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            number += 1
            candidate = output_dir / f"{name}-{number}"


def _write_run_start(run_dir: Path, config: Any, preprocessing: dict, source: str, facts: dict[str, Any]) -> None:
    """What a run records before training: the resolved config, the fitted preprocessing state, and `run.json`
    (the data's source, the start time, the Python version and the given `facts`: cleaning, split sizes…)."""
    from deepwright.evaluation.report import write_json

    (run_dir / "config.yaml").write_text(yaml.safe_dump(dump_config(config), sort_keys=False), encoding="utf-8")
    write_json(run_dir / "preprocessing.json", preprocessing)
    if Path(source).exists():
        source = str(Path(source).resolve())
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    write_json(
        run_dir / "run.json",
        {"data": source, "started": started, **facts, "python": platform.python_version()},
    )


def _write_plots(run_dir: Path, history: list[dict], metrics: dict[str, Any]) -> list[Path]:
    from deepwright.evaluation.plots import plot_confusion_matrix, plot_learning_curves

    plots = []
    if history:
        plots.append(run_dir / "plots" / "learning_curves.png")
        plot_learning_curves(history, plots[-1])
    split = "test" if "test" in metrics else next(iter(metrics), None)
    for output, results in (metrics.get(split) or {}).items():
        if isinstance(results, dict) and "confusion_matrix" in results:
            matrix = results["confusion_matrix"]
            path = run_dir / "plots" / f"confusion_matrix_{_safe_name(output)}.png"
            plot_confusion_matrix(matrix["labels"], matrix["counts"], f"{output} ({split})", path)
            plots.append(path)
    return plots


def _write_misclassified(run_dir: Path, features: Any, model: Any, table: dict, batch_size: int) -> list[Path]:
    """For each image input and classification output: a grid of misclassified test images."""
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
            path = run_dir / "plots" / f"misclassified_{_safe_name(image)}_{_safe_name(output.name)}.png"
            pictures = table[image][_torch_index(wrong)].cpu().numpy() if len(wrong) else np.zeros((0, 1, 1, 1))
            plot_misclassified(pictures, labels[truth[wrong]], labels[predicted[wrong]], f"{output.name}", path)
            plots.append(path)
    return plots


def _torch_index(positions: np.ndarray) -> Any:
    """Row positions as a tensor index, which tensors and lazy columns both take."""
    import torch

    return torch.from_numpy(positions)


def _summary_lines(result: TrainResult) -> list[str]:
    """What a run did, in a few lines: data and cleaning, split sizes, epochs and time."""
    if result.summary:
        return result.summary
    lines = [f"data: {result.source} — {result.cleaning.summary()}"]
    lines.append("split: " + ", ".join(f"{name} {count}" for name, count in result.split_sizes.items()))
    epochs = len(result.history)
    stop = f", stopped early; best epoch {result.best_epoch}" if result.stopped_early else ""
    lines.append(f"trained {epochs} epochs in {result.seconds:.1f} s{stop}")
    return lines
