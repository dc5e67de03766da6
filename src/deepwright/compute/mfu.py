"""Model-FLOPs utilisation: the training FLOPs a model does per second over the matmul FLOP/s this machine can do.

`training_flops` measures a workload's training FLOPs per sample (or token) once, before training, beside the
probe's peak; the training loops then turn each epoch's (or round's) samples/s into `mfu`:

>>> ModelFlops(per_item=1e6, peak=1e9, unit="sample").utilisation(250.0)
0.25
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deepwright.compute.cost import Workload, measure_step
from deepwright.compute.probe import machine_probe

__all__ = ["ModelFlops", "training_flops"]


@dataclass(frozen=True)
class ModelFlops:
    """Training FLOPs (forward + backward) per sample or token (`unit`), and the matmul FLOP/s they are set
    against."""

    per_item: float
    peak: float
    unit: str = "sample"

    def utilisation(self, items_per_second: float) -> float:
        """MFU at `items_per_second`, to three significant digits."""
        return float(f"{self.per_item * items_per_second / self.peak:.3g}")

    def facts(self) -> dict[str, Any]:
        """What a run directory's `run.json` records of it."""
        return {f"flops_per_{self.unit}": round(self.per_item), "peak_flops_per_second": round(self.peak)}


def training_flops(workload: Workload, precision: str = "fp32") -> ModelFlops | None:
    """The training FLOPs per item of `workload` (counted on one step of a copy of its model) and the probe's
    matmul peak at `precision` on the model's device and the current thread count (cached; measured once); None
    for a workload without items."""
    import torch

    if workload.items == 0:
        return None
    device = next(workload.model.parameters()).device
    cost = measure_step(Workload(workload.model, workload.batch, workload.loss, workload.items, workload.unit))
    probe = machine_probe(device if device.type == "cuda" else torch.device("cpu"))
    return ModelFlops(per_item=cost.flops_per_item, peak=probe.peak(precision), unit=workload.unit)
