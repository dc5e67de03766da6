"""The plan as people read it: one section per question (data, parameters, FLOPs, memory, steps, machine, time).

>>> quantity(2_600_000, "FLOP"), size(4_900), duration(0.0012), duration(5400)
('2.6 MFLOP', '4.9 kB', '1.2 ms', '1.5 h')
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deepwright.plan.estimate import Plan

__all__ = ["duration", "format_plan", "quantity", "size"]

OPTIMIZER_STATE = {"adam": "2 moments", "adamw": "2 moments", "sgd": "momentum"}


def format_plan(plan: Plan) -> str:
    """Every section of `plan` (a `Plan`), as lines of text."""
    return "\n".join(
        [
            f"deepwright plan: model_type {plan.model_type} on {plan.data.get('source', 'the data')}",
            *_data(plan),
            *_parameters(plan),
            *_flops(plan),
            *_memory(plan),
            *_steps(plan),
            *_machine(plan),
            *_estimate(plan),
        ]
    )


def _data(plan: Plan) -> list[str]:
    data = plan.data
    if "tokens" in data:
        tokens = data["tokens"]
        return [
            "data",
            f"  corpus: {data['corpus']}",
            f"  tokens: train {tokens['train']:,}, validation {tokens['validation']:,} "
            f"(vocabulary {data['vocabulary']:,})",
        ]
    rows, split = data["rows"], data["split"]
    return [
        "data",
        f"  rows: {rows['rows_out']:,} after cleaning ({rows['summary']})",
        "  split: " + ", ".join(f"{name} {count:,}" for name, count in split.items()),
    ]


def _parameters(plan: Plan) -> list[str]:
    width = max(len(name) for name, _ in [*plan.parameters, ("total", 0)])
    lines = [f"  {name:<{width}}  {count:>12,}" for name, count in plan.parameters]
    return ["parameters", *lines, f"  {'total':<{width}}  {plan.total_parameters:>12,}"]


def _flops(plan: Plan) -> list[str]:
    cost, unit = plan.cost, plan.unit
    backward = "counted" if cost.backward_counted else "2 × forward: the counter saw no backward operation"
    per = max(1, cost.items)
    forward, backward_flops = quantity(cost.forward_flops / per, "FLOP"), quantity(cost.backward_flops / per, "FLOP")
    step = quantity(cost.flops_per_item * plan.batch_items * plan.accumulation, "FLOP")
    return [
        f"FLOPs per {unit} (torch FlopCounterMode, one real batch of {cost.items:,} {unit}s)",
        f"  forward {forward}, backward {backward_flops} ({backward}); a training step: {step}",
    ]


def _memory(plan: Plan) -> list[str]:
    state = OPTIMIZER_STATE.get(plan.optimizer, "")
    state = "none" if plan.optimizer == "sgd" and not plan.memory["optimizer_state"] else state
    lines = [
        f"memory at batch {plan.batch_size:,} ({plan.precision}; activations: the tensors autograd saves in one "
        "forward pass)",
        "  " + _memory_line(plan.memory, f"{plan.optimizer}: {state}"),
    ]
    if plan.memory_per_rank:
        lines.append(
            f"  per rank ({plan.nproc} processes, batch {plan.batch_size // plan.nproc:,} each): "
            + _memory_line(plan.memory_per_rank, plan.optimizer)
        )
    return lines


def _memory_line(memory: dict[str, int], optimizer: str) -> str:
    return (
        f"weights {size(memory['weights'])} · gradients {size(memory['gradients'])} · optimizer state "
        f"{size(memory['optimizer_state'])} ({optimizer}) · activations {size(memory['activations'])} · total "
        f"{size(memory['total'])}"
    )


def _steps(plan: Plan) -> list[str]:
    accumulation = f" × {plan.accumulation} accumulated" if plan.accumulation > 1 else ""
    if plan.steps_per_epoch is None:
        return [
            "steps",
            f"  {plan.total_steps:,} steps of {plan.batch_items * plan.accumulation:,} tokens (batch "
            f"{plan.batch_size}{accumulation} × {plan.batch_items // plan.batch_size} positions): "
            f"{plan.epochs:.2f} passes over the training tokens",
        ]
    return [
        "steps",
        f"  {plan.steps_per_epoch:,} per epoch (batch {plan.batch_size}{accumulation}) × {plan.epochs:g} epochs = "
        f"{plan.total_steps:,} steps",
    ]


def _machine(plan: Plan) -> list[str]:
    probe = plan.probe
    bf16 = f", {quantity(probe.bf16_matmul_flops, 'FLOP/s')} bf16" if probe.bf16_matmul_flops else ""
    return [
        f"machine ({plan.device}, {plan.threads} thread{'s' if plan.threads != 1 else ''}; probed {probe.measured})",
        f"  matmul {quantity(probe.matmul_flops, 'FLOP/s')} fp32{bf16} · convolution "
        f"{quantity(probe.convolution_flops, 'FLOP/s')} · memory {size(probe.bandwidth)}/s · "
        f"{probe.op_seconds * 1e6:.1f} µs per operation",
    ]


def _estimate(plan: Plan) -> list[str]:
    step, cost = plan.step, plan.cost
    operations = cost.forward_ops + cost.backward_ops
    rank = f" per rank of {plan.nproc} processes" if plan.nproc > 1 else ""
    exchange = ", the gradient exchange" if plan.nproc > 1 else ""
    whole = f"epoch {duration(plan.epoch_seconds)} · " if plan.epoch_seconds is not None else ""
    return [
        f"estimate{rank} (training steps only; validation, evaluation{exchange} not counted)",
        f"  step {duration(step.step)}: arithmetic {duration(step.arithmetic)}, memory traffic "
        f"{duration(step.memory)}, {operations:,} operations {duration(step.operations)}, optimizer "
        f"{duration(step.optimizer)}",
        f"  {whole}run ({plan.total_steps:,} steps) {duration(plan.run_seconds)}",
    ]


def quantity(value: float, unit: str) -> str:
    """`value` with a decimal prefix: 2.6 MFLOP, 88 GFLOP/s."""
    for prefix, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def size(count: float) -> str:
    """A byte count with a decimal prefix: 4.9 kB, 1.2 GB."""
    return quantity(count, "B")


def duration(seconds: float) -> str:
    """Seconds for people: 1.2 ms, 3.4 s, 2.1 min, 1.5 h."""
    for unit, scale in (("h", 3600), ("min", 60), ("s", 1), ("ms", 1e-3)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e6:.3g} µs"
