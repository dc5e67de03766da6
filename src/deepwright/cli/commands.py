"""The `deepwright` sub-commands: each takes the parsed arguments, calls `deepwright.api`, and prints.

Heavy libraries are imported inside each command, so building the parser (and `deepwright --help`) stays fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["datasets", "evaluate", "export", "generate", "init", "plan", "predict", "quickstart", "serve", "train"]


def init(args: argparse.Namespace) -> None:
    import json

    if args.schema:
        from deepwright.config import json_schema

        print(json.dumps(json_schema(args.task or "ecd"), indent=2))
        return
    require(args, "data")
    from deepwright.data.io import atomic_path, check_writable, read_table

    if args.output:
        check_writable(args.output, folder=False)

    if args.task == "lm":
        from deepwright.data.corpus import infer_language_model_config

        inference = infer_language_model_config(args.data, args.target, args.pretrained)
    elif args.task == "forecast":
        from deepwright.data.infer_forecast import infer_forecast_config

        require(args, "target")
        time_column = args.time_column.split(",") if args.time_column and "," in args.time_column else args.time_column
        inference = infer_forecast_config(
            read_table(args.data), args.target, time_column=time_column, horizon=args.horizon, lookback=args.lookback
        )
    else:
        if not args.target and not Path(args.data).is_dir():
            require(args, "target")
        from deepwright.data.infer import infer_config

        inference = infer_config(read_table(args.data), args.target or "label", args.pretrained)
    text = config_yaml(inference.config, inference.notes, args.data)
    if args.output:
        with atomic_path(args.output) as temporary:
            temporary.write_text(text, encoding="utf-8")
        for note in inference.notes:
            print(f"note: {note}", file=sys.stderr)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        print(text, end="")


def train(args: argparse.Namespace) -> None:
    """`deepwright train`: in this process, or with `--nproc` in that many processes started by torchrun (each of
    them running this command again, without the launcher's options)."""
    import os

    from deepwright.training.launch import LAUNCH_OPTIONS

    given = [name for name in LAUNCH_OPTIONS[1:] if getattr(args, name) is not None]
    if given and not args.nproc:
        from deepwright.errors import ConfigError

        raise ConfigError(f"--{given[0].replace('_', '-')} goes with --nproc (the processes to start on this machine)")
    if args.nproc and "TORCHELASTIC_RUN_ID" in os.environ:
        from deepwright.errors import ConfigError

        raise ConfigError("--nproc starts torchrun, and this process already runs under it; leave --nproc out")
    if args.nproc:
        from deepwright.training.launch import Launch, launch

        config = args.config or (Path(args.resume) / "config.yaml" if args.resume else None)
        options = Launch(**{name: getattr(args, name) for name in LAUNCH_OPTIONS})
        launch(options, worker_arguments(args), config=config)
        return
    from deepwright.training.distributed import worker

    with worker():
        _train(args)


def worker_arguments(args: argparse.Namespace) -> list[str]:
    """The `train` command line of a worker: every option given, less the launcher's. Each option is written back
    from its destination (`--allow-other-data` from `allow_other_data`; a flag when it is True)."""
    from deepwright.training.launch import LAUNCH_OPTIONS

    arguments = []
    for name, value in vars(args).items():
        if name in LAUNCH_OPTIONS or callable(value) or value is None or value is False:
            continue
        flag = "--" + name.replace("_", "-")
        arguments += [flag] if value is True else [flag, str(value)]
    return arguments


def _train(args: argparse.Namespace) -> None:
    from deepwright.api import Pipeline
    from deepwright.errors import ConfigError
    from deepwright.runs import check_resume_data, config_file

    if args.repeat and (args.resume or args.config):
        raise ConfigError("--repeat takes the config from the run; leave out --resume and --config")
    if args.allow_other_data and not args.resume:
        raise ConfigError("--allow-other-data goes with --resume")
    from deepwright.data.io import check_writable

    if not args.resume:
        check_writable(args.output, folder=True)  # before the work, not after it
    elif Path(args.resume).is_dir():
        check_writable(args.resume, folder=True, option="--resume")
    if args.repeat:
        pipeline, result = repeat(args)
    elif args.resume:
        run_dir = Path(args.resume)
        data = check_resume_data(run_dir, args.data, allow_other_data=args.allow_other_data)
        pipeline = Pipeline.from_config(run_dir / "config.yaml")
        result = pipeline.fit(data, resume_from=run_dir, progress=not args.quiet)
    else:
        require(args, "config", "data")
        pipeline = Pipeline.from_config(args.config)
        with config_file(args.config):
            result = pipeline.fit(args.data, output_dir=args.output, run_name=args.name, progress=not args.quiet)
    import os

    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 speaks for the run
        print_result(pipeline, result)


def repeat(args: argparse.Namespace) -> tuple[Any, Any]:
    """`train --repeat RUN`: say on standard error what differs from the run's record, then train a new run
    (named `<run>-repeat` unless --name says otherwise) from its config and data."""
    import os

    from deepwright.api import Pipeline
    from deepwright.runs import config_file, plan_repeat

    plan = plan_repeat(Path(args.repeat), args.data)
    speaks = os.environ.get("RANK", "0") == "0"  # under torchrun, rank 0 speaks for the run
    for line in plan.differences if speaks else ():
        print(f"differs from {plan.run_dir / 'run.json'}: {line}", file=sys.stderr)
    if speaks and not plan.differences:
        print(f"repeating {plan.run_dir}: data, versions, machine and commit as recorded", file=sys.stderr)
    pipeline = Pipeline.from_config(plan.config)
    name = args.name or f"{plan.run_dir.name}-repeat"
    with config_file(plan.config_source):
        result = pipeline.fit(plan.data, output_dir=args.output, run_name=name, progress=not args.quiet)
    return pipeline, result


def plan(args: argparse.Namespace) -> None:
    import json

    from deepwright.plan import format_plan, make_plan

    require(args, "config", "data")
    made = make_plan(args.config, args.data, nproc=args.nproc, reprobe=args.reprobe)
    print(json.dumps(made.to_dict(), indent=1) if args.json else format_plan(made))


def evaluate(args: argparse.Namespace) -> None:
    from deepwright.api import load
    from deepwright.data.io import check_writable
    from deepwright.evaluation.report import format_metrics_table, write_json
    from deepwright.evaluation.run_plots import write_run_plots

    check_writable(args.output, folder=True)
    pipeline = load(args.model)
    metrics = {"data": pipeline.evaluate(args.data)}
    output = Path(args.output)
    write_json(output / "metrics.json", metrics)
    plots = write_run_plots(output, [], metrics)
    print(format_metrics_table(metrics, pipeline.output_types()))
    print(f"\nwrote {output / 'metrics.json'}" + "".join(f", {plot}" for plot in plots))


def predict(args: argparse.Namespace) -> None:
    from deepwright.api import load
    from deepwright.data.io import check_writable

    if args.output:
        check_writable(args.output, folder=False)
    model = load(args.model)
    rows = model.predict_file(args.data, args.output, chunk_rows=args.chunk_rows, progress=not args.quiet)
    if args.output:
        print(f"wrote {rows} predictions to {args.output}", file=sys.stderr)


def serve(args: argparse.Namespace) -> None:
    import math
    import os

    from deepwright.errors import ConfigError

    token = args.token if args.token is not None else os.environ.get("DEEPWRIGHT_TOKEN") or None
    if token is not None and not token.strip():
        raise ConfigError("--token is empty; give a token, or leave it out to serve without one")
    if not (0 < args.max_body_mb < math.inf and 0 <= args.batch_wait_ms < math.inf):  # NaN fails both
        raise ConfigError(
            "--max-body-mb must be above 0 and --batch-wait-ms at least 0, both finite; "
            f"got {args.max_body_mb:g} and {args.batch_wait_ms:g}"
        )
    if args.onnx and args.runtime != "onnx":
        raise ConfigError("--onnx needs --runtime onnx")
    if args.access_log and not args.no_access_log:  # a log that cannot be written is refused before listening
        from deepwright.data.io import check_writable

        check_writable(args.access_log, folder=False, option="--access-log")
    require_extra("serve", "fastapi", "uvicorn", *(("onnx", "onnxruntime") if args.runtime == "onnx" else ()))
    from deepwright.deploy import server
    from deepwright.deploy.service import ServerSettings

    settings = ServerSettings(
        host=args.host,
        port=args.port,
        token=token,
        max_rows=args.max_rows,
        max_body_bytes=int(args.max_body_mb * 2**20),
        max_batch=args.max_batch,
        batch_wait_ms=args.batch_wait_ms,
        max_text_chars=args.max_text_chars,
        max_queued_rows=max(args.max_queued_rows, args.max_rows),
    )  # a setting that cannot work is refused here, before anything listens
    sock = server.bind_socket(args.host, args.port)  # a port in use is reported before the model loads
    try:
        from deepwright.api import load

        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        model = load(args.model, runtime=args.runtime, onnx_path=args.onnx)
        configure_server_logs(args.access_log, enabled=not args.no_access_log)
        host = f"[{args.host}]" if ":" in args.host else args.host
        print(f"serving {args.model} ({args.runtime}) at http://{host}:{args.port}/ — Ctrl+C stops", file=sys.stderr)
        if token is None and not server.is_loopback(args.host):
            print(
                "warning: listening beyond this machine without --token; anyone who reaches it can use the model",
                file=sys.stderr,
            )
        server.serve(model.predictor, settings, sock=sock)  # the model says what it serves: /predict or /generate
    finally:
        sock.close()


def export(args: argparse.Namespace) -> None:
    require_extra("serve", "onnx", "onnxscript", "onnxruntime")
    from deepwright.api import load

    report = load(args.model).export(args.output, quantize=args.quantize, data=args.data)
    exported = report.onnx
    print(
        f"wrote {exported.path} ({size(exported.size_bytes)}): onnx.checker passed; largest |ONNX - PyTorch| logit "
        f"difference {exported.max_abs_difference:.2g} on {exported.rows_compared} rows"
    )
    quantized = report.quantized
    if quantized is None:
        return
    print(
        f"wrote {quantized.path}: dynamic int8, {size(quantized.bytes_before)} -> {size(quantized.bytes_after)} "
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


def generate(args: argparse.Namespace) -> None:
    import time

    from deepwright.api import load

    pipeline = load(args.model)
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


def datasets(args: argparse.Namespace) -> None:
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


def quickstart(args: argparse.Namespace) -> None:
    from deepwright.api import Pipeline, load
    from deepwright.data.infer import infer_config
    from deepwright.data.io import atomic_path, check_writable, read_table
    from deepwright.datasets import load_dataset

    folder = Path(args.output)
    check_writable(folder, folder=True)
    frame, target = load_dataset("breast_cancer")
    data = folder / "breast_cancer.csv"
    with atomic_path(data) as temporary:
        frame.to_csv(temporary, index=False)
    print(f"1. data: scikit-learn's breast-cancer table, {len(frame)} rows → {data}")
    inference = infer_config(read_table(data), target)
    config_path = folder / "config.yaml"
    with atomic_path(config_path) as temporary:
        temporary.write_text(config_yaml(inference.config, inference.notes, str(data)), encoding="utf-8")
    print(f"2. config inferred (deepwright init) → {config_path}")
    print("3. training (deepwright train) …")
    pipeline = Pipeline.from_config(config_path)
    result = pipeline.fit(data, output_dir=folder / "runs", run_name="breast_cancer")
    print_result(pipeline, result)
    rows = frame.drop(columns=[target]).sample(2, random_state=0)
    model = load(result.bundle_dir)
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


def print_result(pipeline: Any, result: Any) -> None:
    from deepwright.evaluation.report import format_metrics_table

    for line in result.summary_lines():
        print(line)
    if result.metrics:
        print(format_metrics_table(result.metrics, pipeline.output_types()))
    print(f"run directory: {result.run_dir}  (config.yaml, log.jsonl, metrics.json, report.md, plots/)")
    print(f"bundle: {result.bundle_dir}")


def config_yaml(config: dict, notes: list[str], data: str) -> str:
    import yaml

    header = [f"# deepwright config inferred from {data}", *(f"# {note}" for note in notes)]
    return "\n".join(header) + "\n" + yaml.safe_dump(config, sort_keys=False, width=110)


def configure_server_logs(access_log: str | None, *, enabled: bool) -> None:
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


def require_extra(extra: str, *modules: str) -> None:
    """A `ConfigError` naming the modules of an optional extra that are not installed, and how to install them."""
    import importlib.util

    from deepwright.errors import ConfigError

    missing = [module for module in modules if importlib.util.find_spec(module) is None]
    if missing:
        raise ConfigError(f"{', '.join(missing)} not installed; this command needs: pip install 'deepwright[{extra}]'")


def size(count: int) -> str:
    """A byte count for people: 17.2 kB, 3.4 MB."""
    for unit, scale in (("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"


def require(args: argparse.Namespace, *names: str) -> None:
    from deepwright.errors import ConfigError

    missing = [f"--{name}" for name in names if not getattr(args, name)]
    if missing:
        raise ConfigError(f"{args.handler.__name__.strip('_')} needs {' and '.join(missing)}")
