"""`deepwright plan` and model-FLOPs utilisation: every section printed for a table, an image folder and a corpus;
the parameter count equal to the trained model's; FLOPs against an analytic count; activation memory against the
bytes autograd really saves (and against the CUDA allocator where there is a GPU); the probe's cache written and
reused; bad input as exit status 2; and `mfu` in every round of a run's log.jsonl."""

from __future__ import annotations

import functools
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml

import deepwright as dp
from deepwright.compute import MachineProbe, Workload, machine_probe, measure_step
from deepwright.config import OptimizerConfig
from deepwright.kinds import model_kind
from deepwright.plan import format_plan, make_plan
from deepwright.training.optim import build_optimizer
from tests.helpers import Outcome, Trained, assert_user_error, make_config, make_frame, write_config, write_frame
from tests.images import DIGITS, image_config

CLI = Callable[..., Outcome]
SHAKESPEARE = Path(__file__).parent / "fixtures" / "text" / "shakespeare.txt"
LM_CONFIG = {
    "model_type": "lm",
    "model": {"layers": 1, "heads": 2, "dim": 16, "block_size": 16},
    "trainer": {"max_steps": 8, "eval_every": 4, "eval_batches": 2},
}
SECTIONS = ("data", "parameters", "FLOPs per", "memory at batch", "steps", "machine", "estimate")


@pytest.fixture(scope="session")
def probe_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache folder for the whole session, so that the machine is probed once."""
    return tmp_path_factory.mktemp("cache-home")


@pytest.fixture(autouse=True)
def quick_probe(probe_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The probe's cache in `probe_home`, and a shorter probe (its figures are not what these tests check)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(probe_home))
    monkeypatch.setattr("deepwright.compute.probe.SECONDS_PER_FIGURE", 0.05)


@pytest.fixture
def people(tmp_path: Path) -> Path:
    """A folder with people.csv (`make_frame`) and its config.yaml (`make_config`)."""
    write_frame(make_frame(), tmp_path / "people.csv")
    write_config(tmp_path, make_config())
    return tmp_path


def assert_sections(text: str) -> None:
    for section in SECTIONS:
        assert any(line.startswith(section) for line in text.splitlines()), f"no {section!r} section in:\n{text}"


def saved_bytes(model: torch.nn.Module, batch: dict, loss: Callable) -> int:
    """The bytes of the tensors autograd saves in one forward pass and loss of `model` (parameters left out),
    counted by storage, as the plan does."""
    parameters = {parameter.untyped_storage().data_ptr() for parameter in model.parameters()}
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        if tensor.untyped_storage().data_ptr() not in parameters:
            storages[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss(model(batch), batch)
    return sum(storages.values())


def test_a_table_plan_prints_every_section_and_counts_the_trained_models_parameters(
    cli: CLI, people: Path, trained: Trained
) -> None:
    planned = cli("plan", "--config", "config.yaml", "--data", "people.csv", "--nproc", 2, cwd=people)
    assert planned.returncode == 0, planned.stderr
    assert_sections(planned.stdout)
    assert "per rank (2 processes, batch 8 each)" in planned.stdout
    assert "split: train 84, validation 18, test 18" in planned.stdout
    assert "6 per epoch (batch 16) × 3 epochs = 18 steps" in planned.stdout
    assert "adam: 2 moments" in planned.stdout
    model = trained.pipeline.predictor.model  # the session's run: the same table and model, trained
    total = sum(parameter.numel() for parameter in model.parameters())
    assert re.search(rf"^  total +{total:,}$", planned.stdout, re.MULTILINE), planned.stdout

    as_json = cli("plan", "--config", "config.yaml", "--data", "people.csv", "--json", cwd=people)
    plan = json.loads(as_json.stdout)
    assert plan["parameters"]["total"] == total == sum(plan["parameters"]["blocks"].values())
    assert set(plan["parameters"]["blocks"]) == {
        "encoders[__passthrough__]",
        "encoders[city]",
        "combiner",
        "heads[label]",
    }
    assert plan["flops"]["forward_per_item"] > 0 and plan["flops"]["backward_method"] == "counted"
    assert plan["memory_bytes"]["optimizer_state"] == 2 * plan["memory_bytes"]["weights"]  # Adam's two moments
    assert plan["estimate_seconds"]["step"] > 0
    assert plan["estimate_seconds"]["run"] == pytest.approx(18 * plan["estimate_seconds"]["step"])


def test_the_forward_flops_of_an_mlp_are_two_in_out_per_linear_per_sample(tmp_path: Path) -> None:
    model = torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3))
    cost = measure_step(Workload(model, torch.randn(8, 10), None, items=8))
    assert cost.forward_flops == 8 * 2 * (10 * 32 + 32 * 3)
    # backward: both weight gradients, and the input gradient of the second layer only (the batch needs none)
    assert cost.backward_flops == 8 * 2 * (10 * 32 + 32 * 3 + 32 * 3)

    numbers = [{"name": "age", "type": "number"}, {"name": "income", "type": "number"}]
    config = make_config() | {"input_features": numbers, "combiner": {"type": "concat", "dims": [16]}}
    write_frame(make_frame(), tmp_path / "people.csv")
    plan = make_plan(config, tmp_path / "people.csv")
    assert plan.cost.forward_flops / plan.cost.items == 2 * (2 * 16 + 16 * 1)  # 2 numbers → 16 → the binary's logit


@pytest.mark.parametrize(("optimizer", "states"), [("adam", 2), ("adamw", 2), ("sgd", 1), ("plain sgd", 0)])
def test_a_measured_step_leaves_the_model_as_it_was_and_finds_the_optimizer_state(optimizer: str, states: int) -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.Dropout(0.5)).eval()
    before = {name: value.clone() for name, value in model.state_dict().items()}
    batch = torch.randn(16, 4)
    options = {"type": optimizer.split()[-1], "momentum": 0.0 if optimizer == "plain sgd" else 0.9}
    build = functools.partial(build_optimizer, options=OptimizerConfig(**options))
    torch.manual_seed(0)
    expected = torch.rand(1)
    torch.manual_seed(0)
    cost = measure_step(Workload(model, batch, None, items=16, optimizer=build))
    assert torch.rand(1) == expected  # the random stream goes on as if nothing ran
    assert not model.training and all(parameter.grad is None for parameter in model.parameters())
    assert all(torch.equal(before[name], value) for name, value in model.state_dict().items())  # running stats
    assert cost.optimizer_state_bytes == states * cost.parameter_bytes and cost.optimizer_ops > 0


def test_the_activation_memory_is_what_autograd_saves_at_the_configured_batch(tmp_path: Path) -> None:
    config = dp.Pipeline.from_config(make_config(batch_size=64)).config
    write_frame(make_frame(), tmp_path / "people.csv")
    plan = make_plan(config, tmp_path / "people.csv")
    workload = model_kind("ecd").workload(config, tmp_path / "people.csv", tmp_path / "cache")
    assert workload.items == 64
    own = {name: tensor.clone() for name, tensor in workload.batch.items()}  # a batch's own storage, as training's
    measured = saved_bytes(workload.model, own, workload.loss)  # gathered batches have, not a view of the table
    assert plan.memory["activations"] == measured > 64 * 4  # at least the batch's own floats
    per_rank = make_plan(config, tmp_path / "people.csv", nproc=4).memory_per_rank
    assert per_rank["activations"] == measured // 4 and per_rank["weights"] == plan.memory["weights"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the CUDA allocator's figures need a GPU")
def test_the_activation_memory_matches_the_cuda_allocator(tmp_path: Path) -> None:
    config = dp.Pipeline.from_config(make_config(batch_size=512, device="cuda")).config  # tensors well above the
    write_frame(make_frame(rows=2000), tmp_path / "people.csv")  # allocator's 512-byte rounding
    plan = make_plan(config, tmp_path / "people.csv")
    workload = model_kind("ecd").workload(config, tmp_path / "people.csv", tmp_path / "cache")
    model = workload.model.cuda()
    batch = {name: tensor.cuda() for name, tensor in workload.batch.items()}
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    loss = workload.loss(model(batch), batch)  # the graph holds the saved tensors until backward
    torch.cuda.synchronize()
    held = torch.cuda.memory_allocated() - before - loss.nbytes
    batch_bytes = sum(tensor.nbytes for tensor in batch.values())  # allocated before, counted by the plan
    assert plan.memory["activations"] == pytest.approx(held + batch_bytes, rel=0.25)


def test_an_image_folder_plan(cli: CLI, tmp_path: Path) -> None:
    shutil.copytree(DIGITS, tmp_path / "digits")
    write_config(tmp_path, image_config(epochs=2))
    planned = cli("plan", "--config", "config.yaml", "--data", "digits", cwd=tmp_path)
    assert planned.returncode == 0, planned.stderr
    assert_sections(planned.stdout)
    assert "rows: 24 after cleaning" in planned.stdout
    assert "encoders[image]" in planned.stdout
    assert not (tmp_path / ".cache").exists()  # the decoded images went to a temporary folder


def test_a_forecast_plan(tmp_path: Path) -> None:
    from tests.pipelines.test_forecast import config, series

    series().to_csv(tmp_path / "sales.csv", index=False)
    plan = make_plan(config(), tmp_path / "sales.csv")
    assert_sections(format_plan(plan))
    assert plan.data["split"]["train"] == 37 and plan.steps_per_epoch == 3  # windows of the training steps
    assert plan.total_parameters == sum(count for _, count in plan.parameters) > 0


def test_a_language_model_plan_and_its_run_log_mfu(cli: CLI, tmp_path: Path) -> None:
    shutil.copy(SHAKESPEARE, tmp_path / "plays.txt")
    (tmp_path / "lm.yaml").write_text(yaml.safe_dump(LM_CONFIG), encoding="utf-8")
    planned = cli("plan", "--config", "lm.yaml", "--data", "plays.txt", "--json", cwd=tmp_path)
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    assert plan["flops"]["unit"] == "token" and plan["training"]["total_steps"] == 8
    assert plan["data"]["tokens"]["train"] > 7000
    assert plan["training"]["batch_items"] == 12 * 16

    result = dp.Pipeline.from_config(tmp_path / "lm.yaml").fit(
        tmp_path / "plays.txt", output_dir=tmp_path / "runs", progress=False
    )
    model = dp.load(result.bundle_dir).predictor.model
    assert plan["parameters"]["total"] == sum(parameter.numel() for parameter in model.parameters())
    assert "lm_head (shared)" in plan["parameters"]["blocks"]  # tied to the token embedding
    log = [json.loads(line) for line in (result.run_dir / "log.jsonl").read_text().splitlines()]
    assert log and all(0 < record["mfu"] <= 1 for record in log)
    compute = json.loads((result.run_dir / "run.json").read_text())["compute"]
    assert compute["flops_per_token"] == round(plan["flops"]["training_per_item"])

    text = format_plan(make_plan(tmp_path / "lm.yaml", tmp_path / "plays.txt"))
    assert_sections(text)
    assert "FLOPs per token" in text and "run (8 steps)" in text


def test_an_epoch_runs_log_holds_mfu_and_its_run_json_the_peak(trained: Trained) -> None:
    log = [json.loads(line) for line in (trained.result.run_dir / "log.jsonl").read_text().splitlines()]
    assert len(log) == 4 and all(0 < record["mfu"] <= 1 for record in log)
    compute = json.loads((trained.result.run_dir / "run.json").read_text())["compute"]
    assert compute["flops_per_sample"] > 0 and compute["peak_flops_per_second"] > 0


def test_the_probe_is_cached_per_machine_and_measured_again_on_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "probe.json"
    first = machine_probe(cache=cache)
    entries = json.loads(cache.read_text())
    assert list(entries) == [first.key] and f"{torch.get_num_threads()} threads" in first.key
    assert first.matmul_flops > 0 and first.bandwidth > 0 and first.op_seconds > 0

    def measure(device: torch.device, key: str) -> MachineProbe:
        return MachineProbe(key, 1e9, None, 1e9, 1e9, 1e-6, "now")

    monkeypatch.setattr("deepwright.compute.probe._measure", measure)
    assert machine_probe(cache=cache) == first  # reused: not measured again
    again = machine_probe(cache=cache, reprobe=True)
    assert again.matmul_flops == 1e9 and json.loads(cache.read_text())[first.key]["matmul_flops"] == 1e9


def test_plan_reprobe_writes_the_default_cache(cli: CLI, people: Path, probe_home: Path) -> None:
    planned = cli("plan", "--config", "config.yaml", "--data", "people.csv", "--reprobe", cwd=people)
    assert planned.returncode == 0, planned.stderr
    entries = json.loads((probe_home / "deepwright" / "probe.json").read_text())
    assert any(entry["measured"] in planned.stdout for entry in entries.values())


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (("--config", "missing.yaml", "--data", "people.csv"), "missing.yaml"),
        (("--config", "config.yaml", "--data", "absent.csv"), "absent.csv"),
        (("--config", "config.yaml"), "--data"),
        (("--config", "config.yaml", "--data", "people.csv", "--nproc", 5), "--nproc"),
        (("--config", "bad.yaml", "--data", "people.csv"), "trainer.batch_size"),
    ],
)
def test_bad_config_or_data_is_exit_status_2(cli: CLI, people: Path, arguments: tuple, expected: str) -> None:
    (people / "bad.yaml").write_text(yaml.safe_dump(make_config(batch_size=0)), encoding="utf-8")
    message = assert_user_error(cli("plan", *arguments, cwd=people), max_lines=3)
    assert expected in message
