"""ONNX export: the tensor part of a model (encoders → combiner → heads) as an ONNX graph, checked and compared.

Preprocessing and postprocessing stay in Python, the `Predictor`'s own, so a model served through ONNX Runtime
(`deepwright.deploy.runtimes.OnnxRuntime`, set up by `onnx_runtime`) answers as the PyTorch one does. The graph
takes the arrays `FeatureSet.transform_inputs` makes (named after the model's input keys: `__passthrough__` for
the stacked numbers, then the other inputs' names) and returns one logits tensor per output, named after the
output. The batch axis is dynamic, and so is any other axis the model leaves free (the token axis of a text
input).

Export goes through `torch.onnx.export` (the `torch.export`-based exporter), then `onnx.checker`, then a parity
check against PyTorch on the same inputs. The graph records the sha256 of the weights it came from, so a
`model.onnx` left beside retrained weights is refused rather than silently served.

>>> export_onnx(predictor, "model/model.onnx").max_abs_difference < 1e-4    # doctest: +SKIP
True
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch
from torch import nn

from deepwright.deploy.bundle import record_file
from deepwright.deploy.runtimes import OnnxRuntime, TorchRuntime, take_rows
from deepwright.errors import BundleError, DeployError
from deepwright.models.ecd import ECD

if TYPE_CHECKING:
    from deepwright.deploy.bundle import Bundle

__all__ = [
    "PARITY_TOLERANCE",
    "WEIGHTS_KEY",
    "Exportable",
    "OnnxExport",
    "check_graph",
    "export_onnx",
    "onnx_runtime",
    "weights_digest",
]

PARITY_TOLERANCE = 1e-4  # the largest |ONNX − PyTorch| logit difference an export may show
WEIGHTS_KEY = "deepwright.weights_sha256"
_TRACE_ROWS = 3  # rows of the example batch (at least 2, so that the batch axis stays free)
_PARITY_ROWS = 256  # rows compared at most


class Exportable(Protocol):
    """What an export needs of a predictor (`deepwright.deploy.predictor.Predictor` is one)."""

    config: Any  # the resolved config (its trainer's eval_batch_size batches the parity check)
    features: Any  # the fitted feature set: its inputs' example row and `transform_inputs`
    model: nn.Module
    bundle: Bundle | None  # the bundle it was loaded from (its weights' digest goes into the graph)

    def record_columns(self, rows: list[dict]) -> tuple[Any, np.ndarray, str]:
        """The input columns of row dicts, with their row numbers and source."""

    def table_columns(self, table: Any) -> tuple[Any, np.ndarray, str]:
        """The input columns of a `Table`, with their row numbers and source."""


@dataclass
class OnnxExport:
    """An exported graph: its bytes, where it was written (if it was), and how closely it matches PyTorch."""

    model: bytes
    path: Path | None
    max_abs_difference: float
    rows_compared: int
    input_names: list[str]
    output_names: list[str]

    @property
    def size_bytes(self) -> int:
        """Size of the serialised graph."""
        return len(self.model)


def export_onnx(predictor: Exportable, path: str | Path | None = None, *, rows: Any = None) -> OnnxExport:
    """Export the tensor part of `predictor` to ONNX, check it, compare it with PyTorch, and write it to `path`.

    `rows` (a list of row dicts, a DataFrame or a `Table`) are the inputs traced and compared; by default, the
    example row the input features offer. Raises `DeployError` naming the part of the model that cannot be
    exported, or when the graph's logits differ from PyTorch's by more than `PARITY_TOLERANCE`.
    """
    import onnx

    arrays = _input_arrays(predictor, rows)
    model = predictor.model.eval()
    flat = _Positional(model)
    total = len(next(iter(arrays.values())))
    trace = {name: take_rows(column, np.arange(_TRACE_ROWS) % total) for name, column in arrays.items()}
    inputs = tuple(torch.from_numpy(trace[name]) for name in flat.input_names)
    names = (flat.input_names, flat.output_names)
    try:
        proto = _export(flat, inputs, names=names)
    except Exception:  # the exporter raises many types; each means "this graph cannot be expressed"
        try:  # again with only the batch axis free (a spectrogram's frames follow a clip length kept fixed)
            proto = _export(flat, inputs, names=names, free="batch")
        except Exception as error:  # as above
            raise DeployError(_export_failure(model, inputs, error)) from None
    _name_batch_axis(proto)
    digest = weights_digest(predictor)
    if digest:
        onnx.helper.set_model_props(proto, {WEIGHTS_KEY: digest})
    onnx.checker.check_model(proto, full_check=True)
    data = proto.SerializeToString()
    compared = {name: take_rows(column, np.arange(min(total, _PARITY_ROWS))) for name, column in arrays.items()}
    difference = _max_difference(predictor, data, compared)
    if not difference <= PARITY_TOLERANCE:
        raise DeployError(
            f"the ONNX graph's logits differ from PyTorch's by {difference:.3g} (> {PARITY_TOLERANCE:g}); "
            "serve this model with --runtime torch"
        )
    written = None
    if path is not None:
        from deepwright.data.io import atomic_path

        written = Path(path)
        with atomic_path(written) as temporary:
            temporary.write_bytes(data)
        record_file(written)  # written into a bundle: its manifest now lists it, so a changed graph is refused
    rows_compared = len(next(iter(compared.values())))
    return OnnxExport(data, written, difference, rows_compared, list(flat.input_names), list(flat.output_names))


def weights_digest(predictor: Exportable) -> str | None:
    """The sha256 of the weights file of the bundle `predictor` was loaded from (None for an unsaved model)."""
    if predictor.bundle is None:
        return None
    return predictor.bundle.manifest["files"]["weights.safetensors"]["sha256"]


def onnx_runtime(predictor: Exportable, path: str | Path | None = None) -> OnnxRuntime:
    """The ONNX runtime for `predictor`: the graph at `path`, else its bundle's `model.onnx` (which its manifest
    must list: `read_bundle` verified it), else one exported now (in memory). A graph exported from other weights,
    or a `model.onnx` its bundle's manifest does not list, is refused with a `BundleError`."""
    bundle = predictor.bundle
    if path is None and bundle is not None and (bundle.path / "model.onnx").is_file():
        path = bundle.path / "model.onnx"
        if "model.onnx" not in bundle.manifest["files"]:  # listed files were verified when the bundle was read
            raise BundleError(
                f"{path}: not in the bundle's manifest, so it cannot be verified; "
                "export it again with 'deepwright export --format onnx'"
            )
    batch_size = predictor.config.trainer.eval_batch_size
    if path is None:
        return OnnxRuntime(export_onnx(predictor).model, batch_size=batch_size)
    path = Path(path)
    check_graph(path, weights_digest(predictor), predictor.model.input_names)
    return OnnxRuntime(path, batch_size=batch_size)


def check_graph(path: Path, digest: str | None, input_names: list[str]) -> None:
    """Refuse (`BundleError`) a graph that is unreadable, was exported from other weights than `digest`, or does
    not take the model's inputs."""
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except FileNotFoundError:
        raise BundleError(f"{path}: no such ONNX file; write one with 'deepwright export --format onnx'") from None
    except Exception as error:  # protobuf's decode errors have no common type
        raise BundleError(f"{path}: not a readable ONNX graph ({type(error).__name__}); export it again") from None
    properties = {entry.key: entry.value for entry in proto.metadata_props}
    if digest is not None and properties.get(WEIGHTS_KEY) != digest:
        raise BundleError(
            f"{path}: exported from other weights than this bundle's weights.safetensors; "
            "export it again with 'deepwright export --format onnx'"
        )
    names = {entry.name for entry in proto.graph.input}
    if names != set(input_names):
        raise BundleError(f"{path}: takes inputs {sorted(names)}, the model has {sorted(input_names)}; export it again")


# -- export ------------------------------------------------------------------------------------------------


class _Positional(nn.Module):
    """The model with positional tensor inputs and a tuple of logits, the form an ONNX graph has."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.input_names = list(model.input_names)
        self.output_names = list(model.output_names)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits = self.model(dict(zip(self.input_names, inputs)))
        return tuple(logits[name] for name in self.output_names)


def _export(
    module: nn.Module, inputs: tuple, *, names: tuple[list[str], list[str]] | None = None, free: str = "all"
) -> Any:
    """`module(*inputs)` as an ONNX ModelProto: with `free="all"`, every axis free unless the module fixes it;
    with `free="batch"`, the batch axis only. With `names` (input names, output names), `module` is a
    `_Positional` taking its inputs as one variadic argument."""
    from torch.export import Dim

    def axes(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return dict.fromkeys(range(value.ndim) if free == "all" else (0,), Dim.AUTO)
        return type(value)(axes(item) for item in value)

    with _quiet():
        program = torch.onnx.export(
            module,
            inputs,
            input_names=names[0] if names else None,
            output_names=names[1] if names else None,
            dynamic_shapes=(axes(inputs),) if names else axes(inputs),
            dynamo=True,
            verbose=False,
        )
    return program.model_proto


def _export_failure(model: nn.Module, inputs: tuple, error: Exception) -> str:
    """The message for a failed export: which part of the model cannot be exported, found by exporting each
    encoder, the combiner and each head alone on the inputs they received in a forward pass."""
    reason = _first_line(error)
    captured: dict[str, tuple] = {}
    parts = list(_parts(model))

    def capture(label: str) -> Any:
        def hook(module: nn.Module, args: tuple, output: Any) -> None:  # returning None keeps the output
            captured.setdefault(label, args)

        return hook

    hooks = [module.register_forward_hook(capture(label)) for label, module in parts]
    try:
        with torch.no_grad():
            model(dict(zip(model.input_names, inputs)))
    except Exception as forward_error:  # the model fails even in PyTorch: report that
        return f"cannot export the model to ONNX: its forward pass fails ({_first_line(forward_error)})"
    finally:
        for hook in hooks:
            hook.remove()
    for label, module in parts:
        if label not in captured:
            continue
        try:
            _export(module, captured[label], free="batch")
        except Exception as part_error:  # as above: any exporter error means this part cannot be expressed
            return (
                f"cannot export the model to ONNX: {label} ({type(module).__name__}) cannot be exported "
                f"({_first_line(part_error)}); serve this model with --runtime torch"
            )
    return f"cannot export the model to ONNX ({reason}); serve this model with --runtime torch"


def _parts(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """The model's parts with readable names: each input's encoder, the combiner, each output's head."""
    if not isinstance(model, ECD):
        yield from ((f"part {name!r}", module) for name, module in model.named_children())
        return
    for name, encoder in zip(model.input_names, model.encoders):
        label = "the passthrough inputs" if name.startswith("__") else f"the encoder of input {name!r}"
        yield label, encoder
    yield "the combiner", model.combiner
    for name, head in zip(model.output_names, model.heads):
        yield f"the head of output {name!r}", head


def _name_batch_axis(proto: Any) -> None:
    """Call the batch axis 'batch' in the graph's inputs and outputs (the exporter names it s0, s1…)."""
    first = proto.graph.input[0].type.tensor_type.shape.dim[0] if proto.graph.input else None
    if first is None or not first.dim_param:
        return
    symbol = first.dim_param
    for value in [*proto.graph.input, *proto.graph.output, *proto.graph.value_info]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param == symbol:
                dim.dim_param = "batch"


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporter's warnings, log lines and progress prints (failures still raise)."""
    loggers = [logging.getLogger(name) for name in ("torch", "onnxscript")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


# -- inputs and parity -------------------------------------------------------------------------------------


def _input_arrays(predictor: Exportable, rows: Any) -> dict[str, Any]:
    """The model input arrays of `rows` (default: the features' example row)."""
    import pandas as pd

    from deepwright.data.io import Table

    if rows is None:
        from deepwright.deploy.schema import example_row, input_fields

        example = example_row(input_fields(predictor.features))
        if example is None:
            raise DeployError("an input has no example value to trace the model with; give rows (--data) to export")
        rows = [example]
    if isinstance(rows, list):
        columns = predictor.record_columns(rows[:_PARITY_ROWS])
    else:
        table = rows if isinstance(rows, Table) else Table(pd.DataFrame(rows), "the rows", Path.cwd())
        table = Table(table.frame.iloc[:_PARITY_ROWS], table.source, table.base_dir)
        columns = predictor.table_columns(table)
    if len(columns[1]) == 0:
        raise DeployError("no rows to trace the model with; give a data file with at least one row")
    return predictor.features.transform_inputs(columns[0], row_numbers=columns[1], source=columns[2])


def _max_difference(predictor: Exportable, model: bytes, arrays: dict[str, np.ndarray]) -> float:
    """The largest |ONNX − PyTorch| over every output logit of `arrays`."""
    expected = TorchRuntime(predictor.model, predictor.config.trainer.eval_batch_size)(arrays)
    actual = OnnxRuntime(model)(arrays)
    return max(float((expected[name].float() - actual[name].float()).abs().max()) for name in expected)


def _first_line(error: BaseException) -> str:
    """The first line of the message of the error's root cause (the exporter wraps it in advice), shortened."""
    while error.__cause__ is not None:
        error = error.__cause__
    lines = [_ANSI.sub("", line).strip() for line in str(error).splitlines()]
    text = next((line for line in lines if line), type(error).__name__)
    return text if len(text) <= 200 else text[:197] + "…"


_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # the exporter colours its messages
