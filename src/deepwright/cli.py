"""The `deepwright` command: parses arguments, calls `deepwright.api`, prints, and sets the exit status.

Heavy libraries (torch, pandas, pydantic) are imported inside the commands, so `deepwright --help` stays fast.
A `DeepwrightError` (a mistake in the input) prints as one short message and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["main"]

EXIT_USER_ERROR = 2


def main(argv: list[str] | None = None) -> int:
    """Run the command line `argv` (default: `sys.argv[1:]`) and return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USER_ERROR
    import warnings

    from deepwright.errors import DeepwrightError

    warnings.showwarning = _show_warning
    try:
        args.handler(args)
    except DeepwrightError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of standard output left early (`deepwright init --schema | head`)
        _silence_stdout()
        return 1
    return 0


def _silence_stdout() -> None:
    """Point standard output at /dev/null, so that Python's flush at exit does not fail on the closed pipe again."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _show_warning(message: Warning | str, category: type[Warning], *where: Any, **details: Any) -> None:
    """Print deepwright's own warnings as one 'warning:' line (others as Python prints them)."""
    import warnings

    from deepwright.errors import DeepwrightWarning

    if issubclass(category, DeepwrightWarning):
        print(f"warning: {message}", file=sys.stderr)
    else:
        print(warnings.formatwarning(message, category, *where[:2]), file=sys.stderr, end="")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepwright",
        description="Take a deep-learning model from raw data to a served bundle.",
    )
    from deepwright.version import __version__

    parser.add_argument("--version", action="version", version=f"deepwright {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    quickstart = commands.add_parser("quickstart", help="the whole job on a bundled dataset, end to end")
    quickstart.add_argument("--output", default="quickstart", help="folder for everything (default: quickstart/)")
    quickstart.set_defaults(handler=_quickstart)

    init = commands.add_parser("init", help="write a config inferred from a data file")
    init.add_argument("--data", help="data file (CSV, TSV, Parquet, JSON Lines) or a folder of class folders")
    init.add_argument("--target", help="the column to predict (for a folder of class folders: label)")
    init.add_argument("-o", "--output", help="write the config here (default: standard output)")
    init.add_argument("--schema", action="store_true", help="print the config's JSON Schema (for editors) and exit")
    init.add_argument(
        "--task",
        choices=["lm", "forecast"],
        help="lm: a language model of the text in --data (a text file, a folder of them, or a table whose --target "
        "column holds the text); forecast: forecast the --target column of the series in --data",
    )
    init.add_argument(
        "--time-column", help="forecast: the time column, or date-part columns joined by commas (default: inferred)"
    )
    init.add_argument("--horizon", type=_positive_int, default=1, help="forecast: steps to predict (default: 1)")
    init.add_argument("--lookback", type=_positive_int, help="forecast: past steps read (default: inferred)")
    init.set_defaults(handler=_init)

    train = commands.add_parser("train", help="train a model and write a run directory with its bundle")
    train.add_argument("--config", help="config file (YAML or JSON)")
    train.add_argument("--data", help="data file; with --resume, defaults to the run's own data")
    train.add_argument("--output", default="runs", help="parent folder of run directories (default: runs/)")
    train.add_argument("--name", help="run directory name (default: the config's name or the data file's)")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue this run from its last checkpoint")
    train.add_argument("--quiet", action="store_true", help="no progress output")
    train.set_defaults(handler=_train)

    evaluate = commands.add_parser("evaluate", help="metrics of a saved model on a data file")
    evaluate.add_argument("--model", required=True, help="bundle directory (a run's model/ folder)")
    evaluate.add_argument("--data", required=True, help="data file holding the output columns")
    evaluate.add_argument("--output", default="evaluation", help="folder for metrics.json and plots")
    evaluate.set_defaults(handler=_evaluate)

    generate = commands.add_parser("generate", help="continue a prompt with a saved language model, as it writes")
    generate.add_argument("--model", required=True, help="bundle directory of a language model (model_type: lm)")
    generate.add_argument("--prompt", default="", help="the text to continue; '-' reads standard input (default: none)")
    generate.add_argument("--max-new-tokens", type=int, help="tokens to write (default: the config's, 256)")
    generate.add_argument("--temperature", type=float, help="0: always the likeliest token (default: 0.8)")
    generate.add_argument("--top-k", type=int, help="sample among the k likeliest tokens; 0: all (default: 200)")
    generate.add_argument("--top-p", type=float, help="sample among the likeliest tokens whose probabilities reach p")
    generate.add_argument("--seed", type=int, help="the same seed writes the same text (default: a new one each time)")
    generate.add_argument(
        "--stop", action="append", help="stop before this text (repeat for several; \\n and \\t: newline, tab)"
    )
    generate.set_defaults(handler=_generate)

    predict = commands.add_parser("predict", help="predictions of a saved model for a data file")
    predict.add_argument("--model", required=True, help="bundle directory (a run's model/ folder)")
    predict.add_argument("--data", required=True, help="data file holding the input columns")
    predict.add_argument("--output", help="CSV file to write (default: standard output)")
    predict.add_argument(
        "--chunk-rows", type=_positive_int, default=10_000, help="rows read and predicted at a time (default: 10000)"
    )
    predict.add_argument("--quiet", action="store_true", help="no progress bar")
    predict.set_defaults(handler=_predict)

    serve = commands.add_parser("serve", help="serve a saved model over HTTP, with a web page to try it")
    serve.add_argument("--model", required=True, help="bundle directory (a run's model/ folder)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    serve.add_argument(
        "--runtime", choices=["torch", "onnx"], default="torch", help="run the model on PyTorch or ONNX Runtime"
    )
    serve.add_argument(
        "--onnx", metavar="FILE", help="with --runtime onnx: this graph (default: the bundle's model.onnx)"
    )
    serve.add_argument("--token", help="require 'Authorization: Bearer TOKEN' (default: $DEEPWRIGHT_TOKEN, else none)")
    serve.add_argument("--max-rows", type=_positive_int, default=10_000, help="rows per request (default: 10000)")
    serve.add_argument("--max-body-mb", type=float, default=32.0, help="request body limit in MB (default: 32)")
    serve.add_argument("--max-batch", type=_positive_int, default=64, help="single-row requests per model call (64)")
    serve.add_argument(
        "--batch-wait-ms",
        type=float,
        default=0.0,
        help="how long a lone single-row request waits for others to share its model call (default: 0; requests "
        "that arrive while the model is busy are batched anyway)",
    )
    serve.add_argument("--threads", type=_positive_int, help="CPU threads for the model (default: torch's choice)")
    serve.add_argument("--access-log", metavar="FILE", help="write the JSON access log here (default: standard error)")
    serve.add_argument("--no-access-log", action="store_true", help="no access log")
    serve.set_defaults(handler=_serve)

    export = commands.add_parser("export", help="export a saved model to ONNX, optionally quantised to int8")
    export.add_argument("--model", required=True, help="bundle directory (a run's model/ folder)")
    export.add_argument("--format", choices=["onnx"], default="onnx", help="the export format (default: onnx)")
    export.add_argument("--quantize", choices=["int8"], help="also write a dynamic int8 graph and compare its metrics")
    export.add_argument("--output", help="ONNX file to write (default: model.onnx in the bundle)")
    export.add_argument(
        "--data", help="rows to check the export and measure int8 on (default: the run's test split, if found)"
    )
    export.set_defaults(handler=_export)

    datasets = commands.add_parser("datasets", help="list the bundled datasets, or write one as CSV")
    datasets.add_argument("name", nargs="?", help="dataset to write")
    datasets.add_argument("-o", "--output", help="CSV file to write (default: NAME.csv)")
    datasets.set_defaults(handler=_datasets)
    return parser


# -- commands ----------------------------------------------------------------------------------------------


def _init(args: argparse.Namespace) -> None:
    import json

    if args.schema:
        from deepwright.config import json_schema

        print(json.dumps(json_schema(args.task or "ecd"), indent=2))
        return
    _require(args, "data")
    from deepwright.data.io import atomic_path, read_table

    if args.task == "lm":
        from deepwright.data.corpus import infer_language_model_config

        inference = infer_language_model_config(args.data, args.target)
    elif args.task == "forecast":
        from deepwright.data.infer_forecast import infer_forecast_config

        _require(args, "target")
        time_column = args.time_column.split(",") if args.time_column and "," in args.time_column else args.time_column
        inference = infer_forecast_config(
            read_table(args.data), args.target, time_column=time_column, horizon=args.horizon, lookback=args.lookback
        )
    else:
        if not args.target and not Path(args.data).is_dir():
            _require(args, "target")
        from deepwright.data.infer import infer_config

        inference = infer_config(read_table(args.data), args.target or "label")
    text = _config_yaml(inference.config, inference.notes, args.data)
    if args.output:
        with atomic_path(args.output) as temporary:
            temporary.write_text(text, encoding="utf-8")
        for note in inference.notes:
            print(f"note: {note}", file=sys.stderr)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        print(text, end="")


def _train(args: argparse.Namespace) -> None:
    from deepwright.api import Pipeline
    from deepwright.runs import read_run_json

    if args.resume:
        run_dir = Path(args.resume)
        data = args.data or read_run_json(run_dir, "run.json")["data"]
        pipeline = Pipeline.from_config(run_dir / "config.yaml")
        result = pipeline.fit(data, resume_from=run_dir, progress=not args.quiet)
    else:
        _require(args, "config", "data")
        pipeline = Pipeline.from_config(args.config)
        result = pipeline.fit(args.data, output_dir=args.output, run_name=args.name, progress=not args.quiet)
    _print_result(pipeline, result)


def _evaluate(args: argparse.Namespace) -> None:
    import deepwright
    from deepwright.evaluation.report import format_metrics_table, write_json
    from deepwright.evaluation.run_plots import write_run_plots

    pipeline = deepwright.load(args.model)
    metrics = {"data": pipeline.evaluate(args.data)}
    output = Path(args.output)
    write_json(output / "metrics.json", metrics)
    plots = write_run_plots(output, [], metrics)
    print(format_metrics_table(metrics, pipeline.output_types()))
    print(f"\nwrote {output / 'metrics.json'}" + "".join(f", {plot}" for plot in plots))


def _predict(args: argparse.Namespace) -> None:
    import deepwright

    model = deepwright.load(args.model)
    rows = model.predict_file(args.data, args.output, chunk_rows=args.chunk_rows, progress=not args.quiet)
    if args.output:
        print(f"wrote {rows} predictions to {args.output}", file=sys.stderr)


def _serve(args: argparse.Namespace) -> None:
    import os

    from deepwright.errors import ConfigError

    token = args.token if args.token is not None else os.environ.get("DEEPWRIGHT_TOKEN") or None
    if token is not None and not token.strip():
        raise ConfigError("--token is empty; give a token, or leave it out to serve without one")
    if args.max_body_mb <= 0 or args.batch_wait_ms < 0:
        raise ConfigError("--max-body-mb must be above 0 and --batch-wait-ms at least 0")
    if args.onnx and args.runtime != "onnx":
        raise ConfigError("--onnx needs --runtime onnx")
    _require_extra("serve", "fastapi", "uvicorn", *(("onnx", "onnxruntime") if args.runtime == "onnx" else ()))
    from deepwright.deploy.server import bind_socket, serve
    from deepwright.deploy.service import ServerSettings

    settings = ServerSettings(
        host=args.host,
        port=args.port,
        token=token,
        max_rows=args.max_rows,
        max_body_bytes=int(args.max_body_mb * 2**20),
        max_batch=args.max_batch,
        batch_wait_ms=args.batch_wait_ms,
    )
    sock = bind_socket(args.host, args.port)  # a port in use is reported before the model loads
    try:
        import deepwright

        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        model = deepwright.load(args.model, runtime=args.runtime, onnx_path=args.onnx)
        _configure_server_logs(args.access_log, enabled=not args.no_access_log)
        host = f"[{args.host}]" if ":" in args.host else args.host
        print(f"serving {args.model} ({args.runtime}) at http://{host}:{args.port}/ — Ctrl+C stops", file=sys.stderr)
        if token is None and args.host not in ("127.0.0.1", "localhost", "::1"):
            print(
                "warning: listening beyond this machine without --token; anyone who reaches it can use the model",
                file=sys.stderr,
            )
        serve(model.predictor, settings, sock=sock)  # the model says what it serves: /predict or /generate
    finally:
        sock.close()


def _export(args: argparse.Namespace) -> None:
    _require_extra("serve", "onnx", "onnxscript", "onnxruntime")
    import deepwright

    report = deepwright.load(args.model).export(args.output, quantize=args.quantize, data=args.data)
    exported = report.onnx
    print(
        f"wrote {exported.path} ({_size(exported.size_bytes)}): onnx.checker passed; largest |ONNX - PyTorch| logit "
        f"difference {exported.max_abs_difference:.2g} on {exported.rows_compared} rows"
    )
    quantized = report.quantized
    if quantized is None:
        return
    print(
        f"wrote {quantized.path}: dynamic int8, {_size(quantized.bytes_before)} -> {_size(quantized.bytes_after)} "
        f"({quantized.ratio:.0%} of the float graph)"
    )
    if not report.metrics:
        print("metric change not measured: give --data with the output columns (the run's data was not found)")
        return
    before, after = report.metrics["torch"], report.metrics["int8"]
    print(f"metrics on {report.evaluated_on}, PyTorch -> int8:")
    for name in before:
        if isinstance(before[name], float) and isinstance(after.get(name), float):
            print(f"  {name:24} {before[name]:.4f} -> {after[name]:.4f}  ({after[name] - before[name]:+.4f})")


def _generate(args: argparse.Namespace) -> None:
    import time

    import deepwright

    pipeline = deepwright.load(args.model)
    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    generation = pipeline.generate(
        prompt,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed,
        stop=None if args.stop is None else [text.replace("\\n", "\n").replace("\\t", "\t") for text in args.stop],
        stream=True,
    )
    for note in generation.notes:
        print(f"note: {note}", file=sys.stderr)
    started = time.perf_counter()
    sys.stdout.write(prompt)
    for piece in generation:
        sys.stdout.write(piece)
        sys.stdout.flush()
    if not (prompt + generation.text).endswith("\n"):
        sys.stdout.write("\n")
    sys.stdout.flush()  # the text before the closing line on standard error
    seconds = time.perf_counter() - started
    reason = "a stop string" if generation.finish_reason == "stop" else "max_new_tokens"
    print(
        f"({generation.new_tokens} tokens in {seconds:.2f} s, {generation.new_tokens / max(seconds, 1e-9):,.0f} "
        f"tokens/s; ended by {reason})",
        file=sys.stderr,
    )


def _datasets(args: argparse.Namespace) -> None:
    from deepwright.datasets import DATASETS, load_dataset

    if not args.name:
        for name, dataset in DATASETS.items():
            print(f"{name:15} target {dataset.target!r:14} {dataset.description}")
        return
    frame, _ = load_dataset(args.name)
    output = args.output or f"{args.name}.csv"
    from deepwright.data.io import atomic_path

    with atomic_path(output) as temporary:
        frame.to_csv(temporary, index=False)
    print(f"wrote {output}: {len(frame)} rows", file=sys.stderr)


def _quickstart(args: argparse.Namespace) -> None:
    import deepwright
    from deepwright.api import Pipeline
    from deepwright.data.infer import infer_config
    from deepwright.data.io import read_table
    from deepwright.datasets import load_dataset

    folder = Path(args.output)
    folder.mkdir(parents=True, exist_ok=True)
    frame, target = load_dataset("breast_cancer")
    data = folder / "breast_cancer.csv"
    frame.to_csv(data, index=False)
    print(f"1. data: scikit-learn's breast-cancer table, {len(frame)} rows → {data}")
    inference = infer_config(read_table(data), target)
    config_path = folder / "config.yaml"
    config_path.write_text(_config_yaml(inference.config, inference.notes, str(data)), encoding="utf-8")
    print(f"2. config inferred (deepwright init) → {config_path}")
    print("3. training (deepwright train) …")
    pipeline = Pipeline.from_config(config_path)
    result = pipeline.fit(data, output_dir=folder / "runs", run_name="breast_cancer")
    _print_result(pipeline, result)
    rows = frame.drop(columns=[target]).sample(2, random_state=0)
    model = deepwright.load(result.bundle_dir)
    print(f"\n4. two raw rows through the saved bundle (deepwright.load('{result.bundle_dir}')):")
    positive = model.predictor.features.outputs[0].labels_[1]
    for index, prediction in zip(rows.index, model.predict(rows.to_dict("records"))):
        label, probability = prediction[f"{target}_prediction"], prediction[f"{target}_probability"]
        truth = frame.loc[index, target]
        print(f"   row {index + 1}: true {truth!r}, predicted {label!r} (P({positive}) = {probability:.3f})")
    print(
        f"\nnext: deepwright predict --model {result.bundle_dir} --data {data}\n"
        f"      deepwright evaluate --model {result.bundle_dir} --data {data}"
    )


# -- helpers -----------------------------------------------------------------------------------------------


def _print_result(pipeline: Any, result: Any) -> None:
    from deepwright.evaluation.report import format_metrics_table

    for line in result.summary_lines():
        print(line)
    if result.metrics:
        print(format_metrics_table(result.metrics, pipeline.output_types()))
    print(f"run directory: {result.run_dir}  (config.yaml, log.jsonl, metrics.json, report.md, plots/)")
    print(f"bundle: {result.bundle_dir}")


def _config_yaml(config: dict, notes: list[str], data: str) -> str:
    import yaml

    header = [f"# deepwright config inferred from {data}", *(f"# {note}" for note in notes)]
    return "\n".join(header) + "\n" + yaml.safe_dump(config, sort_keys=False, width=110)


def _configure_server_logs(access_log: str | None, *, enabled: bool) -> None:
    """JSON lines on standard error for the server's own events, and the access log there or in a file (the
    handlers of an earlier call in the same process are replaced)."""
    import logging

    from deepwright.deploy.middleware import JsonFormatter

    access = logging.getLogger("deepwright.access")
    targets = {"deepwright": logging.StreamHandler(sys.stderr), "uvicorn": logging.StreamHandler(sys.stderr)}
    targets["deepwright.access"] = (
        logging.FileHandler(access_log, encoding="utf-8") if access_log else logging.StreamHandler(sys.stderr)
    )
    for name, handler in targets.items():
        logger = logging.getLogger(name)
        for old in [old for old in logger.handlers if getattr(old, "deepwright_server", False)]:
            logger.removeHandler(old)
            old.close()
        handler.deepwright_server = True
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    access.setLevel(logging.INFO if enabled else logging.WARNING)


def _require_extra(extra: str, *modules: str) -> None:
    """A `ConfigError` naming the modules of an optional extra that are not installed, and how to install them."""
    import importlib.util

    from deepwright.errors import ConfigError

    missing = [module for module in modules if importlib.util.find_spec(module) is None]
    if missing:
        raise ConfigError(f"{', '.join(missing)} not installed; this command needs: pip install 'deepwright[{extra}]'")


def _size(count: int) -> str:
    """A byte count for people: 17.2 kB, 3.4 MB."""
    for unit, scale in (("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"


def _positive_int(text: str) -> int:
    """argparse type: a whole number above 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _require(args: argparse.Namespace, *names: str) -> None:
    from deepwright.errors import ConfigError

    missing = [f"--{name}" for name in names if not getattr(args, name)]
    if missing:
        raise ConfigError(f"{args.handler.__name__.strip('_')} needs {' and '.join(missing)}")


if __name__ == "__main__":
    sys.exit(main())
