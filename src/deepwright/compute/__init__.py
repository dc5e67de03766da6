"""What training a model costs and what this machine gives, measured rather than assumed: the FLOPs, dispatched
operations and saved-tensor bytes of one training step on a real batch (`cost`), the machine's matmul FLOP/s,
memory bandwidth and per-operation time (`probe`, cached per machine), and model-FLOPs utilisation (`mfu`).

The training kinds use it to log MFU; `deepwright plan` (`deepwright.plan`) uses it to estimate a run. It imports
torch and nothing else of deepwright, so both can.
"""

from deepwright.compute.cost import StepCost, Workload, measure_step
from deepwright.compute.mfu import ModelFlops, training_flops
from deepwright.compute.probe import MachineProbe, machine_probe

__all__ = ["MachineProbe", "ModelFlops", "StepCost", "Workload", "machine_probe", "measure_step", "training_flops"]
