"""What the kinds trained by epochs over rows of tensors share (tables/ECD and forecasts): read → prepare (clean
and split, or order and window a series) → fit the preprocessing on the training rows → tensors → model → the
epoch loop → metrics on validation and test → plots, bundle, `metrics.json` and `report.md`.

A subclass says how its rows are prepared, which features and predictor it has, and which plots it adds.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from deepwright.data.io import read_table
from deepwright.data.split import SPLIT_NAMES
from deepwright.kinds.base import FitRequest, open_run, save_bundle
from deepwright.runs import TrainResult, read_run_json, write_run_report

__all__ = ["RowModelKind"]


class RowModelKind(ABC):
    """The epoch-trained fit, shared by the table and forecast kinds; subclasses fill in the hooks below."""

    name: ClassVar[str]
    can_generate: ClassVar[bool] = False

    @abstractmethod
    def prepare(self, config: Any, table: Any) -> Any:
        """The prepared rows of `table`: `.split` (rows per split, `sizes()`, `method`), `.cleaning`, and
        `.columns(features, split)` / `.tensors(features, split, source)`."""

    @abstractmethod
    def features(self, config: Any, cache_dir: Path) -> Any:
        """The (unfitted) preprocessing of `config`'s columns."""

    @abstractmethod
    def new_predictor(self, config: Any, features: Any, model: Any) -> Any:
        """The predictor of a freshly trained model."""

    def extra_plots(self, run_dir: Path, features: Any, model: Any, test: dict, batch_size: int) -> list[Path]:
        """Plots beyond the learning curves and confusion matrices, drawn from the test split (none by default)."""
        return []

    def output_types(self, config: Any) -> dict[str, str]:
        """{output name → feature type}."""
        return {feature.name: feature.type for feature in config.output_features}

    def workload(self, config: Any, data: Any, cache_dir: Path) -> Any:
        """What `fit` would train on `data`, built as `fit` builds it but not trained (for `deepwright plan`): a
        `Workload` of the model, a first batch of training rows, the loss, the optimizer, the steps, and the rows
        and split."""
        import functools
        import math

        import torch

        from deepwright.compute import Workload
        from deepwright.data.batches import batch_bounds, num_rows
        from deepwright.training.optim import build_optimizer

        options = config.trainer
        table = read_table(data)
        prepared = self.prepare(config, table)
        features = self.features(config, cache_dir)
        columns, row_numbers = prepared.columns(features, "train")
        features.fit(columns, row_numbers=row_numbers, source=table.source)
        train = prepared.tensors(features, "train", table.source)
        torch.manual_seed(options.seed)
        batch = {name: column[: options.batch_size] for name, column in train.items()}
        steps = math.ceil(
            len(batch_bounds(len(prepared.split.train), options.batch_size)) / options.gradient_accumulation
        )
        return Workload(
            model=features.build_model(),
            batch=batch,
            loss=features.loss,
            items=num_rows(batch),
            batch_items=options.batch_size,
            optimizer=functools.partial(build_optimizer, options=options.optimizer),
            accumulation=options.gradient_accumulation,
            steps_per_epoch=max(1, steps),
            total_steps=max(1, steps) * options.epochs,
            data={
                "source": table.source,
                "rows": prepared.cleaning.to_dict() | {"summary": prepared.cleaning.summary()},
                "split": prepared.split.sizes(),
            },
        )

    def fit(self, config: Any, data: Any, request: FitRequest) -> tuple[Any, TrainResult]:
        """Train on `data` by epochs and write the run directory (see the module docstring)."""
        import torch

        from deepwright.compute import Workload, training_flops
        from deepwright.data.batches import num_rows, to_device
        from deepwright.evaluation.plots import preload_plotting
        from deepwright.evaluation.report import write_json
        from deepwright.evaluation.run_plots import write_run_plots
        from deepwright.models.checkpointing import use_gradient_checkpointing
        from deepwright.training.distributed import Distributed
        from deepwright.training.threads import training_threads
        from deepwright.training.trainer import check_options, create_state, fit

        started = time.perf_counter()
        preload_plotting()
        options = config.trainer
        table = read_table(data)
        prepared = self.prepare(config, table)
        features = self.features(config, request.output_dir / ".cache")
        if request.resume_from is not None:
            features.load_state(read_run_json(request.resume_from, "preprocessing.json"))
        else:
            columns, row_numbers = prepared.columns(features, "train")
            features.fit(columns, row_numbers=row_numbers, source=table.source)
        tables = {name: prepared.tensors(features, name, table.source) for name in SPLIT_NAMES}
        torch.manual_seed(options.seed)
        model = features.build_model()
        use_gradient_checkpointing(model, options.gradient_checkpointing)
        distributed = Distributed.start(options.device)  # one process unless torchrun started this one
        distributed.per_rank_batch(options.batch_size, "trainer.batch_size")
        threads = training_threads(model, options.batch_size // distributed.world_size, options.threads)
        torch.set_num_threads(threads if options.threads else max(1, threads // distributed.local_world_size))
        device = distributed.device
        model.to(device)
        tables = {name: to_device(split, device) for name, split in tables.items()}
        first = {name: column[: options.batch_size] for name, column in tables["train"].items()}
        flops = training_flops(Workload(model, first, features.loss, num_rows(first)), options.precision)  # for MFU
        state = create_state(model, options, len(prepared.split.train), world_size=distributed.world_size)

        def validate(model: Any, split: dict) -> dict[str, float]:
            return flat_metrics(features, model, split, options.eval_batch_size, distributed)

        check_options(state, tables["validation"] or None, options, validate)  # before anything is written
        split = {"method": prepared.split.method, **prepared.split.sizes()}
        facts = {"cleaning": prepared.cleaning.to_dict(), "split": split, "compute": flops.facts() if flops else {}}
        run_dir = open_run(
            request,
            distributed,
            state,
            name=request.run_name or config.name or table.source,
            config=config,
            preprocessing=features.state(),
            source=table.source,
            facts=facts,
        )
        fit(
            state,
            tables["train"],
            tables["validation"] or None,
            options=options,
            loss_fn=features.loss,
            validate=validate,
            log_path=run_dir / "log.jsonl",
            checkpoint_path=run_dir / "checkpoints" / "last.pt" if options.checkpoint else None,
            progress=request.progress and distributed.is_main,
            flops=flops,
            distributed=distributed,
        )
        model.to("cpu")
        use_gradient_checkpointing(model, False)
        predictor = self.new_predictor(config, features, model)
        if not distributed.is_main:  # the other ranks trained the same weights; rank 0 measures and writes them
            return predictor, _rank_result(run_dir, table.source, state, prepared, started)
        metrics = {
            name: _metrics(features, model, tables[name], options.eval_batch_size)
            for name in ("validation", "test")
            if len(getattr(prepared.split, name))
        }
        predictor.metrics = metrics
        plots = write_run_plots(run_dir, state.history, metrics)
        if tables["test"]:
            plots += self.extra_plots(run_dir, features, model, tables["test"], options.eval_batch_size)
        bundle_dir = save_bundle(config, predictor, run_dir / "model", plots=plots)
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
        write_run_report(result, self.output_types(config), title="deepwright run")
        return predictor, result


def _metrics(features: Any, model: Any, table: dict, batch_size: int, distributed: Any = None) -> dict[str, Any]:
    """The metrics of `model` on every row of `table`. With `distributed` ranks, each predicts its contiguous share
    of the rows and every rank measures the gathered logits of all of them: the same figures on every rank."""
    from deepwright.models.ecd import predict_logits

    if distributed is None or not distributed.enabled:
        return features.metrics(predict_logits(model, table, batch_size), table)
    start, end = distributed.span(len(next(iter(table.values()))))
    logits = predict_logits(model, {name: column[start:end] for name, column in table.items()}, batch_size)
    return features.metrics({name: distributed.all_gather(part) for name, part in logits.items()}, table)


def flat_metrics(features: Any, model: Any, table: dict, batch_size: int, distributed: Any = None) -> dict[str, float]:
    """The metrics of `model` on `table` under the flat names the trainer logs and stops on (over the whole
    table on every rank of `distributed`)."""
    from deepwright.evaluation.report import flatten_metrics

    return flatten_metrics(_metrics(features, model, table, batch_size, distributed))


def _rank_result(run_dir: Path, source: str, state: Any, prepared: Any, started: float) -> TrainResult:
    """What a rank other than 0 returns: the run it trained, without the metrics and files that rank 0 writes."""
    return TrainResult(
        source=source,
        run_dir=run_dir,
        bundle_dir=run_dir / "model",
        metrics={},
        history=state.history,
        cleaning=prepared.cleaning,
        split_sizes=prepared.split.sizes(),
        best_epoch=None,
        stopped_early=state.stopped_early,
        seconds=time.perf_counter() - started,
    )
