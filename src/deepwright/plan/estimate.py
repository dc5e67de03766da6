"""`make_plan`: what a config will cost on some data, before any training and without training.

The model kind builds what `fit` would train (`kind.workload`: the same preprocessing fitted on the same training
rows, or the same corpus and tokenizer, and the same model); one training step of a copy of that model on a real
batch is measured (`deepwright.compute.measure_step`), and this machine's probe turns it into time:

    micro-batch = matmul FLOPs / matmul FLOP/s + convolution FLOPs / convolution FLOP/s
                  + bytes moved / bandwidth + operations × seconds per operation
    step        = gradient_accumulation × micro-batch + optimizer (its bytes / bandwidth + its operations)

The parts add up rather than overlap, since a step's operations run one after another: the matmuls and
convolutions are bound by arithmetic, the element-wise operations between them (activations, norms, pooling) by
memory. The bytes moved are the saved activations three times (written by the forward pass, read and their gradients
written by the backward pass), the weights three times (read forward and backward, gradients written) and the batch
twice (gathered). Small models' steps are mostly operations; large ones' mostly arithmetic. The epoch (or run) time
is the steps' time: validation and evaluation are not counted.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deepwright.errors import ConfigError

if TYPE_CHECKING:
    from deepwright.compute import MachineProbe, StepCost

__all__ = ["Plan", "StepTime", "estimate_step", "make_plan"]


@dataclass
class StepTime:
    """An estimated optimizer step, in seconds, and its parts (per micro-batch, but `optimizer` and `step`)."""

    arithmetic: float
    memory: float
    operations: float
    optimizer: float
    step: float


@dataclass
class Plan:
    """What `deepwright plan` prints: the data's sizes, the parameters, the FLOPs, the memory, the steps, the
    machine's probe and the estimated times (per rank with several processes)."""

    model_type: str
    unit: str  # what FLOPs are counted per: sample, or token for a language model
    data: dict[str, Any]
    parameters: list[tuple[str, int]]
    total_parameters: int
    cost: StepCost  # the measured step
    probe: MachineProbe
    device: str
    threads: int
    precision: str
    optimizer: str
    batch_size: int
    batch_items: int  # samples (tokens) in a global batch
    nproc: int
    accumulation: int
    steps_per_epoch: int | None
    total_steps: int
    epochs: float  # passes over the training rows (tokens)
    memory: dict[str, int]
    memory_per_rank: dict[str, int] | None
    step: StepTime

    @property
    def epoch_seconds(self) -> float | None:
        """An epoch's steps (None for a language model, which trains by steps)."""
        return None if self.steps_per_epoch is None else self.steps_per_epoch * self.step.step

    @property
    def run_seconds(self) -> float:
        """Every step of the run."""
        return self.total_steps * self.step.step

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON-able data (`deepwright plan --json`)."""
        cost = self.cost
        return {
            "model_type": self.model_type,
            "data": self.data,
            "parameters": {"blocks": dict(self.parameters), "total": self.total_parameters},
            "flops": {
                "unit": self.unit,
                "forward_per_item": cost.forward_flops / max(1, cost.items),
                "backward_per_item": cost.backward_flops / max(1, cost.items),
                "backward_method": "counted" if cost.backward_counted else "2 x forward",
                "training_per_item": cost.flops_per_item,
                "measured_on_items": cost.items,
            },
            "memory_bytes": self.memory,
            "memory_bytes_per_rank": self.memory_per_rank,
            "training": {
                "device": self.device,
                "threads": self.threads,
                "precision": self.precision,
                "optimizer": self.optimizer,
                "batch_size": self.batch_size,
                "batch_items": self.batch_items,
                "nproc": self.nproc,
                "gradient_accumulation": self.accumulation,
                "steps_per_epoch": self.steps_per_epoch,
                "total_steps": self.total_steps,
                "epochs": self.epochs,
            },
            "probe": asdict(self.probe),
            "measured_step": asdict(cost),
            "estimate_seconds": {**asdict(self.step), "epoch": self.epoch_seconds, "run": self.run_seconds},
        }


def estimate_step(
    cost: StepCost, probe: MachineProbe, *, items: int, accumulation: int = 1, precision: str = "fp32"
) -> StepTime:
    """The time of one optimizer step over micro-batches of `items` samples (tokens), from the `StepCost` measured
    on `cost.items` of them and the machine's `probe` (see the module docstring)."""
    scale = items / max(1, cost.items)
    flops = (cost.forward_flops + cost.backward_flops) * scale
    convolutions = cost.convolution_flops * scale
    traffic = 3 * cost.saved_bytes * scale + 3 * cost.parameter_bytes + 2 * cost.batch_bytes * scale
    arithmetic = (flops - convolutions) / probe.peak(precision) + convolutions / probe.convolution_flops
    memory = traffic / probe.bandwidth
    operations = (cost.forward_ops + cost.backward_ops) * probe.op_seconds
    optimizer_bytes = 2 * cost.parameter_bytes + cost.gradient_bytes + 2 * cost.optimizer_state_bytes
    optimizer = optimizer_bytes / probe.bandwidth + cost.optimizer_ops * probe.op_seconds
    step = accumulation * (arithmetic + memory + operations) + optimizer
    return StepTime(arithmetic=arithmetic, memory=memory, operations=operations, optimizer=optimizer, step=step)


def make_plan(config: Any, data: Any, *, nproc: int = 1, reprobe: bool = False) -> Plan:
    """The plan of training `config` (a path, dict or `Config`) on `data` with `nproc` processes sharing each batch;
    `reprobe` measures this machine again instead of reading the probe's cache."""
    import torch

    from deepwright.compute import machine_probe, measure_step
    from deepwright.config import load_config
    from deepwright.kinds import model_kind
    from deepwright.plan.parameters import parameter_blocks, parameter_count
    from deepwright.training.device import training_device
    from deepwright.training.threads import training_threads

    config = load_config(config)
    options = config.trainer
    if options.batch_size % nproc:
        raise ConfigError(
            f"trainer.batch_size {options.batch_size} does not divide among {nproc} processes (--nproc); give a "
            "multiple of it, or another process count"
        )
    with tempfile.TemporaryDirectory(prefix="deepwright-plan-") as cache:  # decoded media, gone afterwards
        workload = model_kind(config.model_type).workload(config, data, Path(cache))
        batch_items = workload.batch_items or workload.items
        torch.set_num_threads(training_threads(workload.model, batch_items, options.threads))
        device = training_device(options.device)
        workload.model.to(device)
        cost = measure_step(workload)
    probe = machine_probe(device if device.type == "cuda" else torch.device("cpu"), reprobe=reprobe)
    activations_per_item = cost.saved_bytes / max(1, cost.items)
    fixed = {
        "weights": cost.parameter_bytes,
        "gradients": cost.gradient_bytes,
        "optimizer_state": cost.optimizer_state_bytes,
    }
    memory = fixed | {"activations": round(activations_per_item * batch_items)}
    per_rank = fixed | {"activations": round(activations_per_item * batch_items / nproc)} if nproc > 1 else None
    trained_items = workload.data.get("split", workload.data.get("tokens", {})).get("train", 0)
    items_per_step = batch_items * workload.accumulation
    return Plan(
        model_type=config.model_type,
        unit=workload.unit,
        data=workload.data,
        parameters=parameter_blocks(workload.model),
        total_parameters=parameter_count(workload.model),
        cost=cost,
        probe=probe,
        device=str(device),
        threads=torch.get_num_threads(),
        precision=options.precision,
        optimizer=options.optimizer.type,
        batch_size=options.batch_size,
        batch_items=batch_items,
        nproc=nproc,
        accumulation=workload.accumulation,
        steps_per_epoch=workload.steps_per_epoch,
        total_steps=workload.total_steps,
        epochs=getattr(options, "epochs", None) or workload.total_steps * items_per_step / max(1, trained_items),
        memory=memory | {"total": sum(memory.values())},
        memory_per_rank=per_rank | {"total": sum(per_rank.values())} if per_rank else None,
        step=estimate_step(
            cost, probe, items=batch_items // nproc, accumulation=workload.accumulation, precision=options.precision
        ),
    )
