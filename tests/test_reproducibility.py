"""The reproducibility record of a run (run.json): every field for a table, a class-folder dataset and a language
model corpus, digests equal to hashlib's, the refusal to resume on other data, `train --repeat` saying what
differs, and the git commit of a config kept in a repository."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import deepwright as dp
from deepwright.data.fingerprint import CHUNK_BYTES, data_difference, file_sha256, fingerprint
from deepwright.reproducibility import environment, environment_differences, git_record
from tests.helpers import Outcome, assert_user_error, make_config, make_frame, write_config, write_frame
from tests.images import DIGITS, image_config

CLI = Callable[..., Outcome]
SHAKESPEARE = Path(__file__).parent / "fixtures" / "text" / "shakespeare.txt"
LIBRARIES = {"deepwright", "python", "torch", "numpy", "pandas", "pyarrow", "pydantic", "tokenizers"}

pytestmark = pytest.mark.usefixtures("no_plots")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder with people.csv (40 rows) and a one-epoch config.yaml for it."""
    write_frame(make_frame(40), tmp_path / "people.csv")
    write_config(tmp_path, make_config(epochs=1))
    return tmp_path


def train(cli: CLI, project: Path, *arguments: object) -> Outcome:
    """`deepwright train --config config.yaml --data people.csv --quiet ARGUMENTS…` in `project`."""
    return cli("train", "--config", "config.yaml", "--data", "people.csv", "--quiet", *arguments, cwd=project)


def run_json(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "run.json").read_text(encoding="utf-8"))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def listing_sha256(folder: Path, names: list[str]) -> str:
    """The digest of a folder as `sha256sum` would list `names` (sorted relative paths)."""
    return hashlib.sha256("".join(f"{sha256(folder / name)}  {name}\n" for name in names).encode()).hexdigest()


def assert_environment(record: dict[str, Any]) -> None:
    """The versions, world size and machine of a run recorded in this process."""
    assert record["versions"].keys() >= LIBRARIES
    assert record["versions"]["deepwright"] == dp.__version__
    assert record["python"] == record["versions"]["python"]
    assert record["distributed"] == {"world_size": 1, "backend": None}
    assert record["machine"].keys() == {"platform", "architecture", "cpu", "cores", "gpu", "gpu_count"}
    assert record["machine"]["cpu"] and record["machine"]["cores"] >= 1


# -- what run.json records ------------------------------------------------------------------------------------


def test_a_csv_run_records_config_data_seed_versions_and_machine(cli: CLI, project: Path) -> None:
    assert train(cli, project, "--output", "runs").returncode == 0
    run_dir = project / "runs" / "people"
    record = run_json(run_dir)
    assert record["data"] == str((project / "people.csv").resolve())
    assert {"started", "cleaning", "split"} <= record.keys()
    assert sum(record["split"][name] for name in ("train", "validation", "test")) == 40
    assert record["config"] == {
        "file": "config.yaml",
        "sha256": sha256(run_dir / "config.yaml"),
        "source": str((project / "config.yaml").resolve()),
    }
    assert record["seed"] == 42
    data = project / "people.csv"
    assert record["inputs"] == {
        "kind": "file",
        "path": str(data.resolve()),
        "sha256": sha256(data),
        "bytes": data.stat().st_size,
        "file_count": 1,
        "files": [{"path": "people.csv", "bytes": data.stat().st_size, "sha256": sha256(data)}],
    }
    assert_environment(record)


def test_a_class_folder_run_records_every_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("deepwright.evaluation.run_plots.write_misclassified", lambda *args: [])
    images = tmp_path / "images"
    shutil.copytree(DIGITS, images)
    (images / ".DS_Store").write_bytes(b"not data")
    result = dp.Pipeline.from_config(image_config(epochs=1)).fit(images, output_dir=tmp_path / "runs", progress=False)
    inputs = run_json(result.run_dir)["inputs"]
    names = sorted(path.relative_to(images).as_posix() for path in images.rglob("*.png"))
    assert inputs["kind"] == "folder" and inputs["path"] == str(images.resolve())
    assert inputs["file_count"] == len(names) == 24
    assert [entry["path"] for entry in inputs["files"]] == names
    assert all(entry["sha256"] == sha256(images / entry["path"]) for entry in inputs["files"])
    assert inputs["bytes"] == sum((images / name).stat().st_size for name in names)
    assert inputs["sha256"] == listing_sha256(images, names)
    assert_environment(run_json(result.run_dir))


def test_a_language_model_run_records_its_corpus_folder(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    (corpus / "acts").mkdir(parents=True)
    text = SHAKESPEARE.read_text(encoding="utf-8")
    (corpus / "one.txt").write_text(text[: len(text) // 2], encoding="utf-8")
    (corpus / "acts" / "two.txt").write_text(text[len(text) // 2 :], encoding="utf-8")
    config = {
        "model_type": "lm",
        "model": {"layers": 1, "heads": 2, "dim": 16, "block_size": 16},
        "trainer": {"max_steps": 2, "eval_every": 2, "eval_batches": 1, "seed": 3},
    }
    result = dp.Pipeline.from_config(config).fit(corpus, output_dir=tmp_path / "runs", progress=False)
    record = run_json(result.run_dir)
    assert record["seed"] == 3 and record["split"]["unit"] == "tokens"
    assert record["inputs"]["kind"] == "folder" and record["inputs"]["file_count"] == 2
    assert record["inputs"]["sha256"] == listing_sha256(corpus, ["acts/two.txt", "one.txt"])
    assert record["config"]["sha256"] == sha256(result.run_dir / "config.yaml")
    assert record["config"]["source"] is None  # a dict, not a file
    assert_environment(record)


# -- fingerprints ---------------------------------------------------------------------------------------------


def test_a_torchrun_worker_that_has_not_joined_its_group_reports_the_planned_world_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert environment(gpu=False)["distributed"] == {"world_size": 4, "backend": None}


def test_a_file_larger_than_a_chunk_hashes_as_hashlib_does(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(bytes(range(256)) * (CHUNK_BYTES // 256 * 2 + 7))
    assert file_sha256(path) == sha256(path)
    assert fingerprint(path)["bytes"] == path.stat().st_size


def test_hashing_a_large_file_holds_about_one_chunk_in_memory(tmp_path: Path) -> None:
    import tracemalloc

    path = tmp_path / "large.bin"
    with open(path, "wb") as handle:
        for _ in range(16):
            handle.write(b"x" * CHUNK_BYTES)
    tracemalloc.start()
    try:
        file_sha256(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * CHUNK_BYTES  # the 16 MiB file is never held whole


def test_a_glob_fingerprints_its_matches_relative_to_its_fixed_part(tmp_path: Path) -> None:
    for name in ("parts/b.parquet", "parts/a.parquet", "parts/notes.md"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(name, encoding="utf-8")
    record = fingerprint(f"{tmp_path}/parts/*.parquet")
    assert record["kind"] == "glob" and record["file_count"] == 2
    assert [entry["path"] for entry in record["files"]] == ["a.parquet", "b.parquet"]
    assert record["sha256"] == listing_sha256(tmp_path / "parts", ["a.parquet", "b.parquet"])


def test_an_in_memory_table_has_no_fingerprint() -> None:
    assert fingerprint("the data frame") is None


def test_the_difference_names_the_changed_added_and_removed_files(tmp_path: Path) -> None:
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text(name, encoding="utf-8")
    before = fingerprint(tmp_path)
    (tmp_path / "a.txt").write_text("changed", encoding="utf-8")
    (tmp_path / "c.txt").write_text("new", encoding="utf-8")
    difference = data_difference(before, fingerprint(tmp_path))
    assert difference.startswith(f"sha256 {before['sha256'][:12]}… recorded")
    assert difference.endswith("(a.txt changed and 1 more)")


# -- resuming on other data -----------------------------------------------------------------------------------


def test_resume_on_other_data_is_refused_unless_allowed(cli: CLI, project: Path) -> None:
    assert train(cli, project, "--output", "runs").returncode == 0
    run_dir = project / "runs" / "people"
    write_frame(make_frame(40, seed=1), project / "other.csv")
    refused = cli("train", "--resume", run_dir, "--data", "other.csv", "--quiet", cwd=project)
    message = assert_user_error(refused, max_lines=1)
    assert "--data other.csv is not the data of run" in message and "--allow-other-data" in message
    assert sha256(project / "people.csv")[:12] in message and sha256(project / "other.csv")[:12] in message

    allowed = cli("train", "--resume", run_dir, "--data", "other.csv", "--allow-other-data", "--quiet", cwd=project)
    assert allowed.returncode == 0, allowed.stderr
    assert allowed.stderr.startswith("warning: resuming on other data (--allow-other-data): --data other.csv")
    assert len(allowed.stderr.strip().splitlines()) == 1

    same = cli("train", "--resume", run_dir, "--data", "people.csv", "--quiet", cwd=project)
    assert same.returncode == 0 and same.stderr == ""


def test_resume_on_its_own_data_changed_since_is_refused(cli: CLI, project: Path) -> None:
    assert train(cli, project, "--output", "runs").returncode == 0
    run_dir = project / "runs" / "people"
    write_frame(make_frame(40, seed=2), project / "people.csv")
    message = assert_user_error(cli("train", "--resume", run_dir, "--quiet", cwd=project), max_lines=1)
    assert "changed since the run started" in message and "(people.csv changed)" in message
    allowed = cli("train", "--resume", run_dir, "--allow-other-data", "--quiet", cwd=project)
    assert allowed.returncode == 0 and "warning: resuming on other data" in allowed.stderr


def test_allow_other_data_goes_with_resume(cli: CLI, project: Path) -> None:
    assert "--allow-other-data goes with --resume" in assert_user_error(train(cli, project, "--allow-other-data"))


# -- repeating a run ------------------------------------------------------------------------------------------


def test_repeat_says_what_differs_and_trains_a_new_run(cli: CLI, project: Path) -> None:
    assert train(cli, project, "--output", "runs").returncode == 0
    run_dir = project / "runs" / "people"
    same = cli("train", "--repeat", run_dir, "--output", "runs", "--quiet", cwd=project)
    assert same.returncode == 0, same.stderr
    assert same.stderr == f"repeating {run_dir}: data, versions, machine and commit as recorded\n"
    assert run_json(project / "runs" / "people-repeat")["inputs"] == run_json(run_dir)["inputs"]

    record = run_json(run_dir)
    record["versions"]["numpy"] = "0.0.1"
    record["machine"]["cores"] = 1000
    (run_dir / "run.json").write_text(json.dumps(record), encoding="utf-8")
    write_frame(make_frame(40, seed=3), project / "people.csv")
    changed = cli("train", "--repeat", run_dir, "--name", "again", "--quiet", cwd=project)
    assert changed.returncode == 0, changed.stderr
    lines = changed.stderr.strip().splitlines()
    prefix = f"differs from {run_dir / 'run.json'}: "
    assert all(line.startswith(prefix) for line in lines)
    numpy_now = environment(gpu=False)["versions"]["numpy"]
    assert sorted(line.removeprefix(prefix) for line in lines) == sorted(
        [
            f"data {record['data']}: {data_difference(record['inputs'], fingerprint(project / 'people.csv'))}",
            f"numpy 0.0.1 when recorded, {numpy_now} now",
            f"machine cores: 1000 when recorded, {environment(gpu=False)['machine']['cores']!r} now",
        ]
    )
    assert "(people.csv changed)" in changed.stderr
    new_run = project / "runs" / "again"
    assert (new_run / "model" / "manifest.json").is_file()
    assert run_json(new_run)["inputs"]["sha256"] == sha256(project / "people.csv")
    assert (new_run / "config.yaml").read_text() == (run_dir / "config.yaml").read_text()


@pytest.mark.parametrize("command", ["--repeat", "--resume"])
@pytest.mark.parametrize("damage", ["missing", "garbled", "no data"])
def test_a_run_without_a_readable_record(cli: CLI, project: Path, damage: str, command: str) -> None:
    run_dir = project / "runs" / "people"
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text("{}", encoding="utf-8")
    if damage != "missing":
        (run_dir / "run.json").write_text("{not json" if damage == "garbled" else "[]", encoding="utf-8")
    message = assert_user_error(cli("train", command, run_dir, cwd=project), max_lines=1)
    expected = {"missing": "not found", "garbled": "cannot be read as JSON", "no data": "holds no 'data' entry"}
    assert "run.json" in message and expected[damage] in message
    assert not (project / "runs" / "people-repeat").exists()


def test_repeat_takes_the_config_from_the_run(cli: CLI, project: Path) -> None:
    completed = cli("train", "--repeat", "runs/people", "--config", "config.yaml", cwd=project)
    assert "--repeat takes the config from the run" in assert_user_error(completed)


def test_environment_differences_name_python_the_world_size_and_the_commit() -> None:
    recorded = {
        "versions": {"python": "3.10.0", "torch": "2.4.0", "onnx": "1.16"},
        "distributed": {"world_size": 2, "backend": "gloo"},
        "git": {"commit": "a" * 40, "dirty": False, "root": "/project"},
    }
    current = {
        "versions": {"python": "3.12.1", "torch": "2.4.0"},
        "distributed": {"world_size": 1, "backend": None},
        "git": {"commit": "b" * 40, "dirty": True, "root": "/project"},
    }
    assert environment_differences(recorded, current) == [
        "Python 3.10.0 when recorded, 3.12.1 now",
        "distributed backend: 'gloo' when recorded, None now",
        "distributed world_size: 2 when recorded, 1 now",
        f"git commit {'a' * 12} when recorded, {'b' * 12} now",
        "git work tree /project has uncommitted changes now (it had none)",
    ]
    before_joining = {"world_size": 2, "backend": None}  # a torchrun worker before its group is initialised
    assert environment_differences(recorded, {**current, "distributed": before_joining})[1].startswith("git")
    assert environment_differences(recorded, {**current, "git": None})[-1] == (
        f"git commit {'a' * 12} recorded; /project is no git work tree now"
    )


# -- git ------------------------------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_a_config_in_a_git_repository_records_its_commit(cli: CLI, project: Path) -> None:
    def git(*arguments: str) -> str:
        done = subprocess.run(["git", "-C", str(project), *arguments], capture_output=True, text=True, check=True)
        return done.stdout.strip()

    git("init", "-q")
    git("add", "config.yaml")
    git("-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-q", "-m", "config")
    assert train(cli, project, "--output", "runs").returncode == 0  # people.csv and runs/ are untracked: clean
    record = run_json(project / "runs" / "people")
    assert record["git"] == {
        "commit": git("rev-parse", "HEAD"),
        "dirty": False,
        "root": git("rev-parse", "--show-toplevel"),
    }

    (project / "config.yaml").write_text((project / "config.yaml").read_text() + "\n", encoding="utf-8")
    assert git_record(project)["dirty"] is True
    assert git_record(project / "runs")["commit"] == record["git"]["commit"]
