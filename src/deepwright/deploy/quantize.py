"""Dynamic int8 quantisation of an exported ONNX graph, with ONNX Runtime's `quantize_dynamic`.

The weights of matrix multiplications are stored as 8-bit integers with one scale per tensor; activations are
quantised on the fly, batch by batch, so no calibration data is needed. The graph keeps its inputs, outputs and
the digest of the weights it came from, so it is served (`deepwright serve --runtime onnx --onnx FILE`) like the
float graph.

>>> quantize_int8("model/model.onnx", "model/model.int8.onnx").bytes_after      # doctest: +SKIP
6150
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

from deepwright.deploy.bundle import record_file

__all__ = ["Quantized", "quantize_int8"]


@dataclass
class Quantized:
    """A quantised graph: where it is and the file sizes before and after."""

    path: Path
    bytes_before: int
    bytes_after: int

    @property
    def ratio(self) -> float:
        """Size after as a share of size before."""
        return self.bytes_after / self.bytes_before if self.bytes_before else 1.0


def quantize_int8(source: str | Path, target: str | Path) -> Quantized:
    """Write the dynamic int8 quantisation of the ONNX graph at `source` to `target` (atomically)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from deepwright.data.io import atomic_path

    source, target = Path(source), Path(target)
    properties = {entry.key: entry.value for entry in onnx.load(str(source), load_external_data=False).metadata_props}
    logger = logging.getLogger()  # quantize_dynamic logs advice at INFO/WARNING through the root logger
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with atomic_path(target) as temporary, contextlib.redirect_stdout(None):
            quantize_dynamic(source, temporary, weight_type=QuantType.QInt8)
            quantized = onnx.load(str(temporary), load_external_data=False)
            onnx.helper.set_model_props(quantized, properties)  # the weights digest travels with the graph
            onnx.checker.check_model(quantized, full_check=True)
            onnx.save(quantized, str(temporary))
    finally:
        logger.setLevel(level)
    record_file(target)  # beside a bundle's weights: its manifest lists it
    return Quantized(target, source.stat().st_size, target.stat().st_size)
