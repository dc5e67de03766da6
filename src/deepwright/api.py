"""The Python API: `Pipeline` ties the stages together and does no arithmetic of its own. Each step is asked of
the config's model kind (`deepwright.kinds`): a table, a forecast or a language model. The CLI only calls what is
here.

>>> import deepwright as dp
>>> pipe = dp.Pipeline.from_config("config.yaml")             # doctest: +SKIP
>>> result = pipe.fit("train.csv")                            # doctest: +SKIP
>>> pipe.predict({"age": 39, "city": "Lyon"})                 # doctest: +SKIP
>>> pipe.save("model/"); dp.load("model/")                    # doctest: +SKIP
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from deepwright.config import Config, load_config
from deepwright.errors import ConfigError, DeepwrightError, NotFittedError
from deepwright.kinds import FitRequest, ModelKind, bundle_kind, model_kind
from deepwright.kinds.base import save_bundle
from deepwright.kinds.table import ExportReport
from deepwright.runs import TrainResult, read_run_json

__all__ = ["ExportReport", "Pipeline", "TrainResult", "load", "read_run_json"]


class Pipeline:
    """A config, and once fitted or loaded, its feature preprocessing and model.

    Build one with `Pipeline.from_config` (then `fit`) or `deepwright.load` (a saved bundle).
    """

    def __init__(self, config: Config, predictor: Any = None) -> None:
        self.config = config
        self.kind: ModelKind = model_kind(config.model_type)
        self._predictor = predictor

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
        """Train on `data` (a path, DataFrame or Arrow table; a corpus for a language model) and write the run
        directory.

        The run directory (`output_dir/<name>/`) gets the resolved config, the JSON-lines log, a checkpoint
        per epoch, plots, `metrics.json` for the validation and test splits, a report and the bundle
        (`model/`). With `resume_from` (a run directory), training continues from its last checkpoint.

        A mistake in the data found on the way (even one found only while training, such as an image that
        fails to decode) leaves nothing behind: the new run directory, and the output and cache folders if
        this call made them, are removed.
        """
        output_dir = Path(output_dir)
        request = FitRequest(
            output_dir=output_dir,
            run_name=run_name,
            resume_from=Path(resume_from) if resume_from is not None else None,
            progress=progress,
            made=[path for path in (output_dir, output_dir / ".cache") if not path.exists()],
        )
        try:
            self._predictor, result = self.kind.fit(self.config, data, request)
        except DeepwrightError:
            if resume_from is None:
                for path in reversed(request.made):
                    shutil.rmtree(path, ignore_errors=True)
            raise
        self.config = self._predictor.config  # as the fit completed it (a language model's init_from sizes)
        return result

    # -- using a fitted model ----------------------------------------------------------------------------

    @property
    def predictor(self) -> Any:
        """The fitted predictor (after `fit` or `deepwright.load`): a `Predictor`, `Forecaster` or
        `TextGenerator`."""
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
        return self.kind.evaluate(self.predictor, data)

    def predict_file(
        self, data: Any, output: str | Path | None = None, *, chunk_rows: int = 10_000, progress: bool = True
    ) -> int:
        """Predict every row of the file `data` chunk by chunk (bounded memory; a forecast reads the whole history)
        and write the predictions as CSV to `output` (standard output when None); return the number of rows."""
        return self.kind.predict_file(self.predictor, data, output, chunk_rows=chunk_rows, progress=progress)

    def export(self, path: str | Path | None = None, *, quantize: str | None = None, data: Any = None) -> ExportReport:
        """Export the tensor part of the model to ONNX at `path` (default: the bundle's `model.onnx`), checked
        with onnx.checker and against PyTorch on `data` (default: the run's test split when the bundle sits in
        its run directory, else the inputs' example row). With `quantize="int8"`, also write the dynamic int8
        graph beside it (`model.int8.onnx`) and measure the metrics of PyTorch and of int8 on those rows."""
        return self.kind.export(self.predictor, path, quantize=quantize, data=data)

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
        if not self.can_generate:
            raise ConfigError("only a language model (model_type: lm) generates text; use predict")
        options = {"max_new_tokens": max_new_tokens, "temperature": temperature, "top_k": top_k, "top_p": top_p}
        generation = self.predictor.stream(prompt, seed=seed, stop=stop, **options)
        return generation if stream else "".join(generation)

    @property
    def can_generate(self) -> bool:
        """Whether this pipeline writes text (a language model) rather than predicting rows."""
        return self.kind.can_generate

    def save(self, path: str | Path, *, plots: list[Path] = ()) -> Path:
        """Write the bundle (config, preprocessing, weights, metrics, manifest) to the directory `path`."""
        return save_bundle(self.config, self.predictor, path, plots=plots)

    def output_types(self) -> dict[str, str]:
        """{output name → feature type}; a language model's one output is the next token."""
        return self.kind.output_types(self.config)


def load(path: str | Path, *, runtime: str = "torch", onnx_path: str | Path | None = None) -> Pipeline:
    """Load a saved bundle directory as a fitted `Pipeline` (verifying every file against its manifest).

    With `runtime="onnx"`, a table model runs on ONNX Runtime (see `Predictor.from_bundle`); preprocessing is the
    same. Forecasts and language models run on torch only.
    """
    predictor = bundle_kind(path).load(path, runtime=runtime, onnx_path=onnx_path)
    return Pipeline(predictor.config, predictor)
