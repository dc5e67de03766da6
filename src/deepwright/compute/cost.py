"""What one training step of a model costs, measured on one real batch: the FLOPs of its forward and backward
passes (torch's `FlopCounterMode`), the aten operations it dispatches (a counting dispatch mode), the bytes of the
tensors autograd saves for the backward pass (`saved_tensors_hooks`), and the optimizer's operations and state.

The forward and backward passes run on the model itself, in training mode, with the random-number state forked; its
buffers (batch-norm statistics), gradients and mode are put back afterwards, so the model that trains next and the
run's random stream are as they were, and no copy of the weights is made. Only the optimizer's step runs on a copy.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils import flop_counter
from torch.utils._python_dispatch import TorchDispatchMode  # the public base class of dispatch modes

__all__ = ["StepCost", "Workload", "measure_step"]

# (outputs, batch) → the scalar loss; None: the sum of the outputs' means.
LossFunction = Callable[[Any, Any], torch.Tensor]


@dataclass
class Workload:
    """What a run trains, without training it: the built model, one real batch of what it takes, the loss, how
    many samples (or tokens, `unit`) the batch holds and a configured batch holds, the optimizer it steps, how
    many batches make an optimizer step, its steps, and the facts of its data (rows, split, tokens…)."""

    model: nn.Module
    batch: Any
    loss: LossFunction | None
    items: int
    unit: str = "sample"
    batch_items: int = 0  # samples (tokens) in a batch of the configured size; 0: `items`
    optimizer: Callable[[nn.Module], torch.optim.Optimizer] | None = None
    accumulation: int = 1
    steps_per_epoch: int | None = None  # None: a step loop, not epochs
    total_steps: int = 0
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class StepCost:
    """One measured training step over `items` samples (or tokens): FLOPs, dispatched operations, saved bytes."""

    items: int
    forward_flops: int
    backward_flops: int
    backward_counted: bool  # False: the counter saw no backward operation, and backward_flops is 2 × forward
    convolution_flops: int  # the part of both done by convolutions (the rest: matmuls and attention)
    forward_ops: int
    backward_ops: int
    optimizer_ops: int
    saved_bytes: int  # tensors autograd keeps for the backward pass, parameters left out
    batch_bytes: int  # the batch's own tensors
    parameter_bytes: int
    gradient_bytes: int
    optimizer_state_bytes: int

    @property
    def flops_per_item(self) -> float:
        """Training FLOPs (forward + backward) per sample or token."""
        return (self.forward_flops + self.backward_flops) / max(1, self.items)


class OperationCounter(TorchDispatchMode):
    """Counts the aten operations dispatched while it is active (forward, backward and optimizer alike)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        self.count += 1
        return func(*args, **(kwargs or {}))


def measure_step(workload: Workload) -> StepCost:
    """Run one training step of `workload`, counting what it costs, and leave its model as it was (see the module
    docstring). The batch is moved to the model's device."""
    model = workload.model
    was_training = model.training
    buffers = [buffer.detach().clone() for buffer in model.buffers()]
    gradients = [parameter.grad for parameter in model.parameters()]
    try:
        return _measure(workload)
    finally:
        with torch.no_grad():
            for buffer, before in zip(model.buffers(), buffers):
                buffer.copy_(before)
        for parameter, gradient in zip(model.parameters(), gradients):
            parameter.grad = gradient
        model.train(was_training)


def _measure(workload: Workload) -> StepCost:
    model = workload.model.train()
    for parameter in model.parameters():
        parameter.grad = None
    device = next(model.parameters()).device
    batch = _to_device(workload.batch, device)
    parameters = {parameter.untyped_storage().data_ptr() for parameter in model.parameters()}
    saved: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in parameters:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    devices = [device] if device.type == "cuda" else []
    with (
        torch.random.fork_rng(devices=devices),
        flop_counter.FlopCounterMode(display=False, custom_mapping=_CPU_ATTENTION) as flops,
    ):
        with OperationCounter() as forward_ops, torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            outputs = model(batch)
            loss = workload.loss(outputs, batch) if workload.loss is not None else _mean_of(outputs)
        forward_flops = flops.get_total_flops()
        with OperationCounter() as backward_ops:
            loss.backward()
        backward_flops = flops.get_total_flops() - forward_flops
        by_operation = flops.get_flop_counts().get("Global", {})
        convolution_flops = sum(count for operation, count in by_operation.items() if "conv" in str(operation))
    optimizer_ops, state_bytes = _optimizer_step(model, workload.optimizer)
    counted = backward_flops > 0 or forward_flops == 0
    return StepCost(
        items=workload.items,
        forward_flops=forward_flops,
        backward_flops=backward_flops if counted else 2 * forward_flops,
        backward_counted=counted,
        convolution_flops=convolution_flops if counted else 3 * convolution_flops,
        forward_ops=forward_ops.count,
        backward_ops=backward_ops.count,
        optimizer_ops=optimizer_ops,
        saved_bytes=sum(saved.values()),
        batch_bytes=sum(tensor.nbytes for tensor in _tensors(batch)),
        parameter_bytes=sum(parameter.nbytes for parameter in model.parameters()),
        gradient_bytes=sum(parameter.nbytes for parameter in model.parameters() if parameter.requires_grad),
        optimizer_state_bytes=state_bytes,
    )


def _optimizer_step(
    model: nn.Module, optimizer: Callable[[nn.Module], torch.optim.Optimizer] | None
) -> tuple[int, int]:
    """The operations one step of the optimizer built by `optimizer` dispatches on a copy of `model` (with its
    gradients), and the bytes of the state it then keeps (moments, momentum); (0, 0) without one."""
    if optimizer is None:
        return 0, 0
    duplicate = copy.deepcopy(model)
    for twin, parameter in zip(duplicate.parameters(), model.parameters()):
        twin.grad = None if parameter.grad is None else parameter.grad.clone()
    built = optimizer(duplicate)
    built.step()  # the first step creates the state: not counted
    with OperationCounter() as counter:
        built.step()
    state_bytes = sum(
        value.nbytes
        for state in built.state.values()
        for value in state.values()
        if torch.is_tensor(value) and value.dim() > 0
    )
    return counter.count, state_bytes


def _mean_of(outputs: Any) -> torch.Tensor:
    """The sum of the means of every output tensor: a loss whose backward reaches every output."""
    return sum(tensor.float().mean() for tensor in _tensors(outputs))


def _tensors(value: Any) -> list[torch.Tensor]:
    """The tensors of a tensor, or of a dict / list / tuple of them."""
    if torch.is_tensor(value):
        return [value]
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else []
    return [tensor for item in items for tensor in _tensors(item)]


def _to_device(value: Any, device: torch.device) -> Any:
    """`value`'s tensors on `device`, each a copy of its own: a batch sliced from a whole table is a view of the
    table's storage, which the saved-tensor count (by storage) would otherwise take for the batch's."""
    if torch.is_tensor(value):
        return value.to(device, copy=True)
    if isinstance(value, dict):
        return {name: _to_device(item, device) for name, item in value.items()}
    return value


def _cpu_attention(query: Any, key: Any, value: Any, *args: Any, out_val: Any = None, **kwargs: Any) -> int:
    return flop_counter.sdpa_flop_count(query, key, value)


def _cpu_attention_backward(
    grad_out: Any, query: Any, key: Any, value: Any, *args: Any, out_val: Any = None, **kwargs: Any
) -> int:
    return flop_counter.sdpa_backward_flop_count(grad_out, query, key, value)


# The counter knows the CUDA attention kernels but not the CPU flash kernel that scaled_dot_product_attention runs
# on a CPU; counted with the same formulas (shapes in, FLOPs out).
_CPU_ATTENTION = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_attention,
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_attention_backward,
}
