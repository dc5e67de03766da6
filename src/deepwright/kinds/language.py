"""The language-model kind (`model_type: lm`). Its fit: read the corpus →
split it (first 90 % / last 10 % of the characters, as nanoGPT) → learn the tokenizer on the training text →
encode both parts → GPT → train → measure the validation loss and perplexity on the whole validation text →
bundle. With `init_from`, the tokenizer, the model's sizes and its first weights are a GPT-2 checkpoint's. It
writes the same run directory as a table model: config.yaml, run.json, preprocessing.json (the tokenizer),
log.jsonl (one line per estimate), checkpoints/last.pt, metrics.json, plots/, report.md and model/.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from deepwright.config import LanguageModelConfig, resolve_init_from
from deepwright.data.clean import CleaningReport
from deepwright.data.corpus import Corpus, read_corpus, split_text
from deepwright.errors import ConfigError, DataError
from deepwright.kinds.base import FitRequest, open_run, refuse, save_bundle
from deepwright.runs import TrainResult, read_run_json, write_run_report

__all__ = ["LanguageModelKind"]

FINAL_EVALUATION_TOKENS = 2_000_000  # the validation text measured at the end is cut to this many tokens


class LanguageModelKind:
    """A corpus → a causal language model that writes text (`generate`); it predicts no rows."""

    name = "lm"
    can_generate = True

    def fit(self, config: LanguageModelConfig, data: Any, request: FitRequest) -> tuple[Any, TrainResult]:
        """Train the language model of `config` on the corpus `data` (see the module docstring)."""
        import torch

        from deepwright.compute import Workload, training_flops
        from deepwright.deploy.generator import TextGenerator
        from deepwright.evaluation.plots import preload_plotting
        from deepwright.evaluation.report import write_json
        from deepwright.evaluation.run_plots import write_run_plots
        from deepwright.models.checkpointing import use_gradient_checkpointing
        from deepwright.models.gpt import GPT
        from deepwright.models.gpt2_weights import load_gpt2_weights
        from deepwright.training.distributed import Distributed
        from deepwright.training.lm import block_windows, create_language_model_state, train_language_model
        from deepwright.training.threads import training_threads

        started = time.perf_counter()
        config = resolve_init_from(config)  # with init_from, the model's sizes are the checkpoint's
        preload_plotting()
        options = config.trainer
        corpus, tokenizer, train_ids, validation_ids = self.tokens(config, data, request.resume_from)

        torch.manual_seed(options.seed)
        model = GPT.from_options(config.model, tokenizer.get_vocab_size())
        if config.init_from is not None and request.resume_from is None:
            load_gpt2_weights(model, config.init_from)
        use_gradient_checkpointing(model, options.gradient_checkpointing)
        distributed = Distributed.start(options.device)  # one process unless torchrun started this one
        _check_strategy(options, distributed)
        blocks_per_rank = distributed.per_rank_batch(options.batch_size, "trainer.batch_size")
        tokens_per_batch = blocks_per_rank * config.model.block_size
        threads = training_threads(model, tokens_per_batch, options.threads)
        torch.set_num_threads(threads if options.threads else max(1, threads // distributed.local_world_size))
        device = distributed.device
        model.to(device)
        blocks = block_windows(train_ids, config.model.block_size)[: options.batch_size, :-1]
        flops = training_flops(Workload(model, blocks, None, blocks.numel(), "token"), options.precision)  # for MFU
        if options.strategy == "fsdp":  # FSDP2 replaces the parameters by their shards: before the optimizer takes them
            distributed.wrap(model, "fsdp")
        state = create_language_model_state(model, options)
        preprocessing = {"tokenizer": tokenizer.to_str(), "vocabulary_size": tokenizer.get_vocab_size()}
        sizes = {"train": len(train_ids), "validation": 0 if validation_ids is None else len(validation_ids), "test": 0}
        facts = {"corpus": corpus.summary(), "split": {"method": "characters", "unit": "tokens", **sizes}}
        facts["compute"] = flops.facts() if flops else {}
        run_dir = open_run(
            request,
            distributed,
            state,
            name=request.run_name or config.name or Path(corpus.source).stem,
            config=config,
            preprocessing=preprocessing,
            source=corpus.source,
            facts=facts,
        )
        train_language_model(
            state,
            train_ids.to(device),
            None if validation_ids is None else validation_ids.to(device),
            options=options,
            block_size=config.model.block_size,
            log_path=run_dir / "log.jsonl",
            checkpoint_path=run_dir / "checkpoints" / "last.pt" if options.checkpoint else None,
            progress=request.progress and distributed.is_main,
            distributed=distributed,
            flops=flops,
        )
        model = _trained_model(model, distributed, config, tokenizer.get_vocab_size())
        if not distributed.is_main:  # the other ranks trained the same model; rank 0 measures and writes it
            return TextGenerator(config, tokenizer, model, {}), _rank_result(run_dir, corpus, state, sizes, started)
        metrics = _final_metrics(model, validation_ids, config.model.block_size)
        generator = TextGenerator(config, tokenizer, model, metrics)
        plots = write_run_plots(run_dir, state.history, {}, x="step")
        bundle_dir = save_bundle(config, generator, run_dir / "model", plots=plots)
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
        write_run_report(result, self.output_types(config), title="deepwright language model")
        return generator, result

    def tokens(
        self, config: LanguageModelConfig, data: Any, run_dir: Path | None = None
    ) -> tuple[Corpus, Any, Any, Any]:
        """The corpus of `data`, its tokenizer (the run's at `run_dir` when resuming, GPT-2's with init_from, else
        learnt on the training text), and the token ids of the training and validation text (None without one),
        checked against the block size."""
        import torch

        from deepwright.features.tokenization import encode_corpus, gpt2_tokenizer, tokenizer_from_json, train_tokenizer

        corpus = read_corpus(data, config.corpus)
        train_text, validation_text = split_text(corpus.text, config.corpus.validation_fraction)
        if run_dir is not None:
            tokenizer = tokenizer_from_json(read_run_json(run_dir, "preprocessing.json")["tokenizer"])
        elif config.init_from is not None:
            tokenizer = gpt2_tokenizer(config.init_from)
        else:
            tokenizer = train_tokenizer(config.tokenizer, [train_text])
        kind = config.tokenizer.type
        train_ids = torch.from_numpy(encode_corpus(tokenizer, train_text, kind))
        validation_ids = torch.from_numpy(encode_corpus(tokenizer, validation_text, kind)) if validation_text else None
        _check_sizes(corpus, config, len(train_ids), None if validation_ids is None else len(validation_ids))
        return corpus, tokenizer, train_ids, validation_ids

    def workload(self, config: LanguageModelConfig, data: Any, cache_dir: Path) -> Any:
        """What `fit` would train on `data`, built as `fit` builds it but not trained (for `deepwright plan`): a
        `Workload` of the GPT, the first `batch_size` blocks of the training tokens, the optimizer, the steps, and
        the corpus and its tokens."""
        import functools

        import torch

        from deepwright.compute import Workload
        from deepwright.models.gpt import GPT
        from deepwright.training.lm import block_windows
        from deepwright.training.optim import build_optimizer

        config = resolve_init_from(config)
        options = config.trainer
        corpus, tokenizer, train_ids, validation_ids = self.tokens(config, data)
        torch.manual_seed(options.seed)
        model = GPT.from_options(config.model, tokenizer.get_vocab_size())
        blocks = block_windows(train_ids, config.model.block_size)[: options.batch_size, :-1]
        tokens = {"train": len(train_ids), "validation": 0 if validation_ids is None else len(validation_ids)}
        return Workload(
            model=model,
            batch=blocks,
            loss=None,
            items=blocks.numel(),
            unit="token",
            batch_items=options.batch_size * config.model.block_size,
            optimizer=functools.partial(build_optimizer, options=options.optimizer, fused=True),
            accumulation=options.gradient_accumulation,
            total_steps=options.max_steps,
            data={
                "source": corpus.source,
                "corpus": corpus.summary(),
                "tokens": tokens,
                "vocabulary": tokenizer.get_vocab_size(),
            },
        )

    def load(self, path: str | Path, *, runtime: str, onnx_path: str | Path | None) -> Any:
        """The bundle's `TextGenerator` (torch only)."""
        from deepwright.deploy.generator import TextGenerator

        if runtime != "torch":
            raise ConfigError(f"a language model runs on torch only, not {runtime!r}")
        return TextGenerator.from_bundle(path)

    def evaluate(self, predictor: Any, data: Any) -> dict[str, Any]:
        """Loss and perplexity on the text of `data` (read like the corpus)."""
        return predictor.evaluate(data)

    def predict_file(
        self, predictor: Any, data: Any, output: str | Path | None, *, chunk_rows: int, progress: bool
    ) -> int:
        """Refused: a language model writes text."""
        return refuse(_WRITES_TEXT.format(action="predict"))

    def export(self, predictor: Any, path: str | Path | None, *, quantize: str | None, data: Any) -> Any:
        """Refused: a language model runs on torch."""
        return refuse(_WRITES_TEXT.format(action="export"))

    def output_types(self, config: Any) -> dict[str, str]:
        """A language model's one output is the next token."""
        return {"next_token": "lm"}


_WRITES_TEXT = "this bundle is a language model: it writes text and cannot {action} rows; use generate"


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


def _check_strategy(options: Any, distributed: Any) -> None:
    """A `ConfigError` for what an FSDP run cannot do yet: write checkpoints of its sharded state."""
    if options.strategy == "fsdp" and distributed.enabled and options.checkpoint:
        raise ConfigError(
            "trainer.strategy fsdp shards the weights and optimizer state across the processes, and deepwright "
            "does not write checkpoints of sharded state yet; set trainer.checkpoint: false (the run then cannot "
            "be resumed), or use trainer.strategy: ddp"
        )


def _trained_model(model: Any, distributed: Any, config: LanguageModelConfig, vocabulary_size: int) -> Any:
    """The trained GPT on the CPU, without gradient checkpointing; under FSDP a new GPT that holds the weights
    gathered from every rank's shards (on rank 0; every rank must call this)."""
    from deepwright.models.checkpointing import use_gradient_checkpointing
    from deepwright.models.gpt import GPT

    if config.trainer.strategy == "fsdp" and distributed.enabled:
        weights = distributed.full_state_dict(model)
        model = GPT.from_options(config.model, vocabulary_size)
        if distributed.is_main:
            model.load_state_dict(weights)
    model.to("cpu")
    use_gradient_checkpointing(model, False)
    return model


def _rank_result(run_dir: Path, corpus: Corpus, state: Any, sizes: dict[str, int], started: float) -> TrainResult:
    """What a rank other than 0 returns: the run it trained, without the metrics and files that rank 0 writes."""
    return TrainResult(
        source=corpus.source,
        run_dir=run_dir,
        bundle_dir=run_dir / "model",
        metrics={},
        history=state.history,
        cleaning=CleaningReport(rows_in=corpus.documents, rows_out=corpus.documents - corpus.empty_documents),
        split_sizes=sizes,
        best_epoch=None,
        stopped_early=False,
        seconds=time.perf_counter() - started,
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
