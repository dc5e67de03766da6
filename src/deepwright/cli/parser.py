"""The `deepwright` command line's arguments: one sub-command per handler in `deepwright.cli.commands`."""

from __future__ import annotations

import argparse

from deepwright.cli import commands

__all__ = ["build_parser", "positive_int"]


def build_parser() -> argparse.ArgumentParser:
    """The `deepwright` argument parser: one sub-command per handler in `deepwright.cli.commands`."""
    parser = argparse.ArgumentParser(
        prog="deepwright",
        description="Take a deep-learning model from raw data to a served bundle.",
    )
    from deepwright.version import __version__

    parser.add_argument("--version", action="version", version=f"deepwright {__version__}")
    subcommands = parser.add_subparsers(title="commands", metavar="COMMAND")

    quickstart = subcommands.add_parser("quickstart", help="the whole job on a bundled dataset, end to end")
    quickstart.add_argument("--output", default="quickstart", help="folder for everything (default: quickstart/)")
    quickstart.set_defaults(handler=commands.quickstart)

    init = subcommands.add_parser("init", help="write a config inferred from a data file")
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
    init.add_argument("--horizon", type=positive_int, default=1, help="forecast: steps to predict (default: 1)")
    init.add_argument("--lookback", type=positive_int, help="forecast: past steps read (default: inferred)")
    init.add_argument(
        "--pretrained",
        metavar="DIR",
        help="a local checkpoint folder (config.json, model.safetensors, tokenizer.json; never downloaded): "
        "lm: the GPT-2 checkpoint to fine-tune (init_from); a table: the encoder of every text column",
    )
    init.set_defaults(handler=commands.init)

    train = subcommands.add_parser("train", help="train a model and write a run directory with its bundle")
    train.add_argument("--config", help="config file (YAML or JSON)")
    train.add_argument("--data", help="data file; with --resume or --repeat, defaults to the run's own data")
    train.add_argument("--output", default="runs", help="parent folder of run directories (default: runs/)")
    train.add_argument("--name", help="run directory name (default: the config's name or the data file's)")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue this run from its last checkpoint")
    train.add_argument(
        "--allow-other-data",
        action="store_true",
        help="with --resume: continue even when the data does not hash as the run recorded (a warning instead)",
    )
    train.add_argument(
        "--repeat",
        metavar="RUN_DIR",
        help="train a new run from this run's config and data, first saying what differs from its run.json",
    )
    train.add_argument("--quiet", action="store_true", help="no progress output")
    # Every train option is passed on to the workers of --nproc from its destination (commands.worker_arguments):
    # name a new one --<dest with dashes>, with a value or action="store_true".
    launch = train.add_argument_group("several processes (torchrun; the config's batch_size stays the global batch)")
    launch.add_argument(
        "--nproc", type=positive_int, help="train in this many processes on this machine (gloo on CPU, a GPU each)"
    )
    launch.add_argument("--nnodes", help="with --nproc: machines in the run (torchrun's --nnodes: 2, or 1:4)")
    launch.add_argument("--node-rank", type=int, help="with --nproc: this machine's number, from 0")
    launch.add_argument("--rdzv-backend", help="with --nproc: how the machines meet (c10d)")
    launch.add_argument("--rdzv-endpoint", help="with --nproc: host:port where the machines meet")
    launch.add_argument("--master-addr", help="with --nproc: the first machine's address (static rendezvous)")
    launch.add_argument("--master-port", type=int, help="with --nproc: its port (static rendezvous)")
    train.set_defaults(handler=commands.train)

    plan = subcommands.add_parser(
        "plan", help="before training: parameters, FLOPs, memory, steps and the time a run will take here"
    )
    plan.add_argument("--config", help="config file (YAML or JSON)")
    plan.add_argument("--data", help="the data the run would train on")
    plan.add_argument("--nproc", type=positive_int, default=1, help="processes sharing each batch (default: 1)")
    plan.add_argument("--reprobe", action="store_true", help="measure this machine again (default: its cached probe)")
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    plan.set_defaults(handler=commands.plan)

    evaluate = subcommands.add_parser("evaluate", help="metrics of a saved model on a data file")
    evaluate.add_argument("--model", required=True, help="bundle directory (a run's model/ folder)")
    evaluate.add_argument("--data", required=True, help="data file holding the output columns")
    evaluate.add_argument("--output", default="evaluation", help="folder for metrics.json and plots")
    evaluate.set_defaults(handler=commands.evaluate)

    generate = subcommands.add_parser("generate", help="continue a prompt with a saved language model, as it writes")
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
    generate.set_defaults(handler=commands.generate)

    predict = subcommands.add_parser("predict", help="predictions of a saved model for a data file")
    predict.add_argument("--model", required=True, help="bundle directory (a run's model/ folder)")
    predict.add_argument("--data", required=True, help="data file holding the input columns")
    predict.add_argument("--output", help="CSV file to write (default: standard output)")
    predict.add_argument(
        "--chunk-rows", type=positive_int, default=10_000, help="rows read and predicted at a time (default: 10000)"
    )
    predict.add_argument("--quiet", action="store_true", help="no progress bar")
    predict.set_defaults(handler=commands.predict)

    serve = subcommands.add_parser("serve", help="serve a saved model over HTTP, with a web page to try it")
    serve.add_argument("--model", required=True, help="bundle directory (a run's model/ folder)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on, 1 to 65535 (default: 8000)")
    serve.add_argument(
        "--runtime", choices=["torch", "onnx"], default="torch", help="run the model on PyTorch or ONNX Runtime"
    )
    serve.add_argument(
        "--onnx", metavar="FILE", help="with --runtime onnx: this graph (default: the bundle's model.onnx)"
    )
    serve.add_argument("--token", help="require 'Authorization: Bearer TOKEN' (default: $DEEPWRIGHT_TOKEN, else none)")
    serve.add_argument("--max-rows", type=positive_int, default=10_000, help="rows per request (default: 10000)")
    serve.add_argument("--max-body-mb", type=float, default=32.0, help="request body limit in MB (default: 32)")
    serve.add_argument("--max-batch", type=positive_int, default=64, help="single-row requests per model call (64)")
    serve.add_argument(
        "--batch-wait-ms",
        type=float,
        default=0.0,
        help="how long a lone single-row request waits for others to share its model call (default: 0; requests "
        "that arrive while the model is busy are batched anyway)",
    )
    serve.add_argument(
        "--max-text-chars", type=positive_int, default=100_000, help="characters per text field (default: 100000)"
    )
    serve.add_argument(
        "--max-queued-rows",
        type=positive_int,
        default=100_000,
        help="rows waiting or running at once; more get 429 with Retry-After (default: 100000)",
    )
    serve.add_argument("--threads", type=positive_int, help="CPU threads for the model (default: torch's choice)")
    serve.add_argument("--access-log", metavar="FILE", help="write the JSON access log here (default: standard error)")
    serve.add_argument("--no-access-log", action="store_true", help="no access log")
    serve.set_defaults(handler=commands.serve)

    export = subcommands.add_parser("export", help="export a saved model to ONNX, optionally quantised to int8")
    export.add_argument("--model", required=True, help="bundle directory (a run's model/ folder)")
    export.add_argument("--format", choices=["onnx"], default="onnx", help="the export format (default: onnx)")
    export.add_argument("--quantize", choices=["int8"], help="also write a dynamic int8 graph and compare its metrics")
    export.add_argument("--output", help="ONNX file to write (default: model.onnx in the bundle)")
    export.add_argument(
        "--data", help="rows to check the export and measure int8 on (default: the run's test split, if found)"
    )
    export.set_defaults(handler=commands.export)

    datasets = subcommands.add_parser("datasets", help="list the bundled datasets, or write one as CSV")
    datasets.add_argument("name", nargs="?", help="dataset to write")
    datasets.add_argument("-o", "--output", help="CSV file to write (default: NAME.csv)")
    datasets.set_defaults(handler=commands.datasets)
    return parser


def positive_int(text: str) -> int:
    """argparse type: a whole number above 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value
