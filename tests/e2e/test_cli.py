"""The command line end to end, in subprocesses: help, init → train → evaluate → predict → datasets, and the
quickstart."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from deepwright.config import load_config
from tests.helpers import TARGET, make_frame, run_cli, write_frame

HEAVY = ("torch", "pandas", "pydantic", "numpy")
COMMANDS = ("quickstart", "init", "train", "evaluate", "predict", "datasets")


def imported_modules(importtime_stderr: str) -> set[str]:
    """Module names from `python -X importtime` output ('import time: self | cumulative | name')."""
    names = set()
    for line in importtime_stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "package":
                names.add(name)
    return names


def heavy(modules: set[str]) -> set[str]:
    return {module for module in modules if module.split(".")[0] in HEAVY}


@pytest.mark.parametrize("args", [["--help"], ["train", "--help"], ["predict", "--help"]])
def test_help_works_without_importing_heavy_libraries(args: list[str], tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "deepwright", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("usage: deepwright")
    modules = imported_modules(completed.stderr)
    assert "deepwright.cli" in modules  # the parse worked, so the check below means something
    assert heavy(modules) == set()
    if args == ["--help"]:
        for command in COMMANDS:
            assert command in completed.stdout


def test_building_the_parser_and_importing_the_package_import_nothing_heavy(tmp_path: Path) -> None:
    script = (
        "import json, sys\n"
        "import deepwright\n"
        "from deepwright.cli.parser import build_parser\n"
        "build_parser().parse_args(['train', '--config', 'c.yaml', '--data', 'd.csv'])\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert json.loads(completed.stdout) == []


def test_version(tmp_path: Path) -> None:
    completed = run_cli("--version", cwd=tmp_path)
    assert completed.returncode == 0
    assert completed.stdout.strip() == "deepwright 0.1.0"


def test_no_command_prints_help_and_exits_2(tmp_path: Path) -> None:
    completed = run_cli(cwd=tmp_path)
    assert completed.returncode == 2
    assert "usage: deepwright" in completed.stdout


@dataclass
class Flow:
    """A working folder where init and train have run once for the whole module."""

    folder: Path
    frame: pd.DataFrame
    init: subprocess.CompletedProcess
    train: subprocess.CompletedProcess

    @property
    def run_dir(self) -> Path:
        return self.folder / "runs" / "people"


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Flow:
    folder = tmp_path_factory.mktemp("cli")
    frame = make_frame(120, seed=1)
    frame.loc[[3, 50, 77], "income"] = np.nan  # empty inputs are filled, not errors
    write_frame(frame, folder / "people.csv")
    init = run_cli("init", "--data", "people.csv", "--target", TARGET, "-o", "config.yaml", cwd=folder)
    if init.returncode == 0:
        config = yaml.safe_load((folder / "config.yaml").read_text())
        config["trainer"]["epochs"] = 3
        (folder / "config.yaml").write_text(yaml.safe_dump(config))
    train = run_cli(
        "train", "--config", "config.yaml", "--data", "people.csv", "--output", "runs", "--quiet", cwd=folder
    )
    return Flow(folder, frame, init, train)


def test_init_writes_an_inferred_config(flow: Flow) -> None:
    assert flow.init.returncode == 0, flow.init.stderr
    assert "wrote config.yaml" in flow.init.stderr
    assert "note: split: stratified" in flow.init.stderr
    config = load_config(flow.folder / "config.yaml")
    assert [(f.name, f.type) for f in config.input_features] == [
        ("age", "number"),
        ("city", "category"),
        ("member", "binary"),
        ("income", "number"),
    ]
    assert [(f.name, f.type) for f in config.output_features] == [(TARGET, "binary")]


def test_init_prints_to_standard_output(flow: Flow) -> None:
    completed = run_cli("init", "--data", "people.csv", "--target", TARGET, cwd=flow.folder)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("# deepwright config inferred from people.csv\n")
    assert load_config(yaml.safe_load(completed.stdout)).output_features[0].name == TARGET


def test_init_schema(tmp_path: Path) -> None:
    completed = run_cli("init", "--schema", cwd=tmp_path)
    assert completed.returncode == 0
    assert "input_features" in json.loads(completed.stdout)["properties"]


def test_init_schema_into_a_pipe_closed_early_ends_without_a_traceback(tmp_path: Path) -> None:
    """`deepwright init --schema | head -c 100`: the reader leaves after 100 bytes of a 70 kB schema."""
    process = subprocess.Popen(
        [sys.executable, "-m", "deepwright", "init", "--schema"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout.read(100).startswith(b"{")
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) == 1
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr


def test_train_writes_a_run_directory(flow: Flow) -> None:
    assert flow.train.returncode == 0, flow.train.stderr
    assert flow.train.stderr == ""  # --quiet
    assert "run directory: runs/people" in flow.train.stdout
    assert "bundle: runs/people/model" in flow.train.stdout
    assert "label (binary)" in flow.train.stdout
    for name in ("config.yaml", "log.jsonl", "metrics.json", "report.md", "checkpoints/last.pt", "model/manifest.json"):
        assert (flow.run_dir / name).is_file(), name
    assert len((flow.run_dir / "log.jsonl").read_text().splitlines()) == 3
    assert set(json.loads((flow.run_dir / "metrics.json").read_text())) == {"validation", "test"}


def test_train_summary_names_the_data_file(flow: Flow) -> None:
    data_line = next(line for line in flow.train.stdout.splitlines() if line.startswith("data: "))
    assert "people.csv" in data_line


def test_evaluate(flow: Flow) -> None:
    completed = run_cli(
        "evaluate", "--model", "runs/people/model", "--data", "people.csv", "--output", "eval", cwd=flow.folder
    )
    assert completed.returncode == 0, completed.stderr
    assert "accuracy" in completed.stdout
    metrics = json.loads((flow.folder / "eval" / "metrics.json").read_text())
    assert set(metrics) == {"data"}
    counts = metrics["data"][TARGET]["confusion_matrix"]["counts"]
    assert sum(map(sum, counts)) == 120
    assert (flow.folder / "eval" / "plots" / f"confusion_matrix_{TARGET}.png").read_bytes()[:4] == b"\x89PNG"


def test_predict_to_a_file(flow: Flow) -> None:
    completed = run_cli(
        "predict", "--model", "runs/people/model", "--data", "people.csv", "--output", "preds.csv", cwd=flow.folder
    )
    assert completed.returncode == 0, completed.stderr
    assert "wrote 120 predictions to preds.csv" in completed.stderr
    predictions = pd.read_csv(flow.folder / "preds.csv")
    assert list(predictions.columns) == [f"{TARGET}_prediction", f"{TARGET}_probability"]
    assert len(predictions) == 120
    assert set(predictions[f"{TARGET}_prediction"]) <= {"high", "low"}
    assert predictions[f"{TARGET}_probability"].between(0, 1).all()


def test_predict_to_standard_output(flow: Flow) -> None:
    completed = run_cli("predict", "--model", "runs/people/model", "--data", "people.csv", cwd=flow.folder)
    assert completed.returncode == 0, completed.stderr
    predictions = pd.read_csv(io.StringIO(completed.stdout))
    assert len(predictions) == 120


def test_predict_into_a_pipe_closed_early_ends_without_a_traceback(flow: Flow) -> None:
    """`deepwright predict … | head -1`: the reader leaves after the header of 20,000 rows of predictions."""
    write_frame(make_frame(20_000, seed=4), flow.folder / "many.csv")
    process = subprocess.Popen(
        [sys.executable, "-m", "deepwright", "predict", "--model", "runs/people/model", "--data", "many.csv"],
        cwd=flow.folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout.readline() == f"{TARGET}_prediction,{TARGET}_probability\n".encode()
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 1
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr


def test_datasets(tmp_path: Path) -> None:
    listing = run_cli("datasets", cwd=tmp_path)
    assert listing.returncode == 0
    for name in ("breast_cancer", "iris", "wine", "digits", "diabetes"):
        assert name in listing.stdout
    written = run_cli("datasets", "iris", "-o", "iris.csv", cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    assert "wrote iris.csv: 150 rows" in written.stderr
    frame = pd.read_csv(tmp_path / "iris.csv")
    assert frame.shape == (150, 5)
    assert frame.columns[-1] == "species"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["iris.csv"]


def test_quickstart_end_to_end(tmp_path: Path) -> None:
    completed = run_cli("quickstart", "--output", "qs", cwd=tmp_path, timeout=600)
    assert completed.returncode == 0, completed.stderr
    folder = tmp_path / "qs"
    assert (folder / "breast_cancer.csv").is_file()
    load_config(folder / "config.yaml")
    run_dir = folder / "runs" / "breast_cancer"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test"]["diagnosis"]["accuracy"] >= 0.95
    assert (run_dir / "model" / "manifest.json").is_file()
    assert "two raw rows through the saved bundle" in completed.stdout
    assert completed.stdout.count("predicted ") == 2
