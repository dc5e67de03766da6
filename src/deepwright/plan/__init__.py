"""`deepwright plan`: before any training, what a config will cost on some data — parameters block by block, FLOPs
per sample forward and backward, memory for weights, gradients, optimizer state and activations, the data's rows
and steps, and the step, epoch and run times this machine's probe predicts (`estimate` says how).

>>> from deepwright.plan import make_plan, format_plan
>>> print(format_plan(make_plan("config.yaml", "train.csv")))   # doctest: +SKIP
"""

from deepwright.plan.estimate import Plan, StepTime, estimate_step, make_plan
from deepwright.plan.parameters import parameter_blocks, parameter_count
from deepwright.plan.report import format_plan

__all__ = ["Plan", "StepTime", "estimate_step", "format_plan", "make_plan", "parameter_blocks", "parameter_count"]
