"""Runtimes: what runs the tensor part of a model (encoders → combiner → heads) for a `Predictor`.

A runtime takes the model input arrays `FeatureSet.transform_inputs` makes and returns the logits of every
output, in batches. `TorchRuntime` runs the PyTorch module itself (the default); `OnnxRuntime` runs an exported
graph (`deepwright.deploy.onnx`) on ONNX Runtime. Preprocessing and postprocessing stay the predictor's own, so
both answer alike.

>>> runtime = OnnxRuntime("model/model.onnx", batch_size=256)   # doctest: +SKIP
>>> runtime(arrays)["diagnosis"].shape                          # doctest: +SKIP
torch.Size([3, 2])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from deepwright.data.batches import to_tensors
from deepwright.errors import DeployError
from deepwright.models.ecd import predict_logits

__all__ = ["OnnxRuntime", "Runtime", "TorchRuntime", "take_rows"]


class Runtime(Protocol):
    """What a `Predictor` runs its model on: model input arrays → logits per output."""

    name: str  # "torch" or "onnx": shown in the server's /metadata

    def __call__(self, arrays: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Logits of every output for the rows of `arrays` (numpy arrays or lazy columns)."""


class TorchRuntime:
    """The tensor part run by eager PyTorch: model input arrays → logits per output, in batches."""

    name = "torch"

    def __init__(self, model: torch.nn.Module, batch_size: int) -> None:
        self.model = model
        self.batch_size = batch_size

    def __call__(self, arrays: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Logits of every output for the rows of `arrays` (numpy arrays or lazy columns)."""
        return predict_logits(self.model, to_tensors(arrays), self.batch_size)


class OnnxRuntime:
    """The tensor part run by ONNX Runtime: model input arrays → logits per output, in batches.

    Threads follow torch's setting, and idle worker threads sleep rather than spin, which suits a server that
    shares its cores. `deepwright.deploy.onnx.onnx_runtime` finds (or exports) and checks the graph of a predictor.
    """

    name = "onnx"

    def __init__(self, model: bytes | str | Path, *, batch_size: int = 1024, threads: int | None = None) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        source = model if isinstance(model, bytes) else str(model)
        self.session = onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        self.inputs = {entry.name: _NUMPY_TYPES.get(entry.type) for entry in self.session.get_inputs()}
        self.fixed_shapes = {entry.name: entry.shape[1:] for entry in self.session.get_inputs()}  # int: fixed size
        self.output_names = [entry.name for entry in self.session.get_outputs()]
        self.batch_size = batch_size

    def __call__(self, arrays: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Logits of every output for the rows of `arrays` (numpy arrays or lazy columns)."""
        total = len(next(iter(arrays.values())))
        pieces: dict[str, list[np.ndarray]] = {name: [] for name in self.output_names}
        for start in range(0, max(total, 1), self.batch_size):
            positions = np.arange(start, min(start + self.batch_size, total))
            feed = {name: take_rows(arrays[name], positions, self.inputs[name]) for name in self.inputs}
            self._check_shapes(feed)
            for name, values in zip(self.output_names, self.session.run(self.output_names, feed)):
                pieces[name].append(values)
        return {name: torch.from_numpy(np.concatenate(parts)) for name, parts in pieces.items()}

    def _check_shapes(self, feed: dict[str, np.ndarray]) -> None:
        """A `DeployError` when an array does not fit an axis the graph fixed (ONNX Runtime would fail obscurely)."""
        for name, array in feed.items():
            expected = self.fixed_shapes[name]
            if array.ndim != len(expected) + 1 or any(
                isinstance(size, int) and size != actual for size, actual in zip(expected, array.shape[1:])
            ):
                raise DeployError(
                    f"the ONNX graph takes input {name!r} as (batch, {', '.join(map(str, expected))}), these rows "
                    f"give {array.shape[1:]}; serve this model with --runtime torch"
                )


def take_rows(column: Any, positions: np.ndarray, dtype: Any = None) -> np.ndarray:
    """Rows `positions` of an array or lazy column, as a contiguous numpy array (of `dtype` when given).

    >>> take_rows(np.arange(6).reshape(3, 2), np.array([2, 0]), np.float32)
    array([[4., 5.],
           [0., 1.]], dtype=float32)
    """
    values = column[positions]
    values = values.numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    if dtype is not None and values.dtype != dtype:
        values = values.astype(dtype)
    return np.ascontiguousarray(values)


_NUMPY_TYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}
