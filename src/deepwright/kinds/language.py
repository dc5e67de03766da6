"""The language-model pipeline (`model_type: lm`), which `Pipeline.fit` runs for such a config: read the corpus →
split it (first 90 % / last 10 % of the characters, as nanoGPT) → learn the tokenizer on the training text →
encode both parts → GPT → train → measure the validation loss and perplexity on the whole validation text →
bundle. It writes the same run directory as a table model: config.yaml, run.json, preprocessing.json (the
tokenizer), log.jsonl (one line per estimate), checkpoints/last.pt, metrics.json, plots/, report.md and model/.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from deepwright.api import (
    TrainResult,
    _device,
    _new_run_dir,
    _read_log,
    _safe_name,
    _write_run_start,
    read_run_json,
)
from deepwright.config import LanguageModelConfig
from deepwright.data.clean import CleaningReport
from deepwright.data.corpus import Corpus, read_corpus, split_text
from deepwright.errors import DataError

__all__ = ["fit_language_model"]

FINAL_EVALUATION_TOKENS = 2_000_000  # the validation text measured at the end is cut to this many tokens


def fit_language_model(
    pipeline: Any,
    data: Any,
    output_dir: Path,
    run_name: str | None,
    resume_from: str | Path | None,
    progress: bool,
    made: list[Path],
) -> TrainResult:
    """Train the language model of `pipeline.config` on the corpus `data` (see the module docstring); a new run
    directory is appended to `made` so that a failure removes it."""
    import json

    import torch

    from deepwright.deploy.generator import TextGenerator, build_language_model
    from deepwright.evaluation.plots import preload_plotting
    from deepwright.evaluation.report import write_json
    from deepwright.features.tokenization import encode_corpus, tokenizer_from_json, train_tokenizer
    from deepwright.training.checkpoint import load_checkpoint
    from deepwright.training.lm import create_language_model_state, train_language_model
    from deepwright.training.threads import training_threads

    started = time.perf_counter()
    preload_plotting()
    config: LanguageModelConfig = pipeline.config
    options = config.trainer
    corpus = read_corpus(data, config.corpus)
    train_text, validation_text = split_text(corpus.text, config.corpus.validation_fraction)
    run_dir = Path(resume_from) if resume_from is not None else None
    if run_dir is not None:
        tokenizer = tokenizer_from_json(read_run_json(run_dir, "preprocessing.json")["tokenizer"])
    else:
        tokenizer = train_tokenizer(config.tokenizer, [train_text])
    kind = config.tokenizer.type
    train_ids = torch.from_numpy(encode_corpus(tokenizer, train_text, kind))
    validation_ids = torch.from_numpy(encode_corpus(tokenizer, validation_text, kind)) if validation_text else None
    _check_sizes(corpus, config, len(train_ids), None if validation_ids is None else len(validation_ids))

    torch.manual_seed(options.seed)
    model = build_language_model(config.model, tokenizer.get_vocab_size())
    tokens_per_batch = options.batch_size * config.model.block_size
    torch.set_num_threads(training_threads(model, tokens_per_batch, options.threads))
    device = _device(options.device)
    model.to(device)
    state = create_language_model_state(model, options)
    preprocessing = {"tokenizer": tokenizer.to_str(), "vocabulary_size": tokenizer.get_vocab_size()}
    sizes = {"train": len(train_ids), "validation": 0 if validation_ids is None else len(validation_ids), "test": 0}
    if run_dir is None:
        run_dir = _new_run_dir(output_dir, _safe_name(run_name or config.name or Path(corpus.source).stem))
        made.append(run_dir)
        facts = {"corpus": corpus.summary(), "split": {"method": "characters", "unit": "tokens", **sizes}}
        _write_run_start(run_dir, config, preprocessing, corpus.source, facts)
    else:
        log_path = run_dir / "log.jsonl"
        state.restore(load_checkpoint(run_dir / "checkpoints" / "last.pt"), _read_log(log_path))
        # Estimates logged after the last checkpoint are made again: drop their lines.
        log_path.write_text("".join(json.dumps(record) + "\n" for record in state.history), encoding="utf-8")
    train_language_model(
        state,
        train_ids.to(device),
        None if validation_ids is None else validation_ids.to(device),
        options=options,
        block_size=config.model.block_size,
        log_path=run_dir / "log.jsonl",
        checkpoint_path=run_dir / "checkpoints" / "last.pt" if options.checkpoint else None,
        progress=progress,
    )
    model.to("cpu")
    metrics = _final_metrics(model, validation_ids, config.model.block_size)
    generator = TextGenerator(config, tokenizer, model, metrics)
    pipeline._predictor = generator
    plots = _write_learning_curves(run_dir, state.history)
    bundle_dir = pipeline.save(run_dir / "model", plots=plots)
    write_json(run_dir / "metrics.json", metrics)
    seconds = time.perf_counter() - started
    result = TrainResult(
        source=corpus.source,
        run_dir=run_dir,
        bundle_dir=bundle_dir,
        metrics=metrics,
        history=state.history,
        cleaning=CleaningReport(
            rows_in=corpus.documents,
            rows_out=corpus.documents - corpus.empty_documents,
            dropped={"empty": corpus.empty_documents} if corpus.empty_documents else {},
        ),
        split_sizes=sizes,
        best_epoch=None,
        stopped_early=False,
        seconds=seconds,
        plots=plots,
        summary=_summary(corpus, sizes, state, seconds, tokenizer.get_vocab_size()),
    )
    _write_report(run_dir, result, pipeline)
    return result


def _check_sizes(corpus: Corpus, config: LanguageModelConfig, train_tokens: int, validation_tokens: int | None) -> None:
    """A `DataError` when the text is too short for the block size or for a validation loss."""
    block_size = config.model.block_size
    if train_tokens <= block_size:
        raise DataError(
            f"the training text has {train_tokens} tokens, but model.block_size {block_size} needs at least "
            f"{block_size + 1}; use a smaller block_size or more text",
            source=corpus.source,
        )
    if validation_tokens is not None and validation_tokens < 2:
        raise DataError(
            f"the validation text (the last {config.corpus.validation_fraction:.0%}) has {validation_tokens} token; "
            "a loss needs two. Raise corpus.validation_fraction, give more text, or set it to 0",
            source=corpus.source,
        )


def _final_metrics(model: Any, validation_ids: Any, block_size: int) -> dict[str, Any]:
    """{"validation": {"loss", "next_token": {"loss", "perplexity", "tokens"}}} over the whole validation text
    (up to `FINAL_EVALUATION_TOKENS`), or {} without one."""
    from deepwright.evaluation.language import corpus_loss

    if validation_ids is None:
        return {}
    results = corpus_loss(model, validation_ids[:FINAL_EVALUATION_TOKENS], block_size)
    return {"validation": {"loss": results["loss"], "next_token": results}}


def _summary(corpus: Corpus, sizes: dict[str, int], state: Any, seconds: float, vocabulary_size: int) -> list[str]:
    speeds = [record["tokens_per_second"] for record in state.history]
    speed = f", {np.median(speeds):,.0f} tokens/s" if speeds else ""
    return [
        f"corpus: {corpus.source} — {corpus.summary()}",
        f"tokens: train {sizes['train']:,}, validation {sizes['validation']:,} (vocabulary {vocabulary_size:,})",
        f"trained {state.step:,} steps in {seconds:.1f} s{speed}",
    ]


def _write_learning_curves(run_dir: Path, history: list[dict]) -> list[Path]:
    from deepwright.evaluation.plots import plot_learning_curves

    if not history:
        return []
    path = run_dir / "plots" / "learning_curves.png"
    plot_learning_curves(history, path, x="step")
    return [path]


def _write_report(run_dir: Path, result: TrainResult, pipeline: Any) -> None:
    from deepwright.evaluation.report import format_metrics_table, write_report

    if not result.metrics:
        return
    write_report(
        run_dir / "report.md",
        title=f"deepwright language model {run_dir.name}",
        summary=result.summary,
        table=format_metrics_table(result.metrics, pipeline.output_types()),
        images=[plot.relative_to(run_dir).as_posix() for plot in result.plots],
    )
