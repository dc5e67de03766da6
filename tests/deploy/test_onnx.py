"""ONNX export and int8 quantisation: a checked graph with a dynamic batch axis, parity with PyTorch, the ONNX
Runtime predictor, refused stale or foreign graphs, and a clear error naming a part that cannot be exported."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pandas as pd
import pytest
import torch
from fastapi.testclient import TestClient
from torch import nn

import deepwright as dp
from deepwright.deploy.onnx import PARITY_TOLERANCE, WEIGHTS_KEY, export_onnx
from deepwright.deploy.predictor import Predictor
from deepwright.deploy.runtimes import OnnxRuntime
from deepwright.deploy.server import create_app
from deepwright.errors import BundleError, ConfigError, DeployError
from tests.deploy.serving import Exported, Served
from tests.helpers import TARGET, Trained


@pytest.fixture(scope="module")
def torch_predictor(served: Served) -> Predictor:
    return Predictor.from_bundle(served.bundle)


def input_arrays(predictor: Predictor, rows: list[dict]) -> dict[str, Any]:
    columns = predictor.record_columns(rows)
    return predictor.features.transform_inputs(columns[0], row_numbers=columns[1], source=columns[2])


def test_the_export_command_reports_the_check_parity_and_int8(exported: Exported) -> None:
    lines = exported.report.splitlines()
    assert lines[0].startswith(f"wrote {exported.bundle / 'model.onnx'} (")
    assert "onnx.checker passed; largest |ONNX - PyTorch| logit difference" in lines[0]
    assert lines[0].endswith("on 9 rows")  # the run's test split (15% of 60 rows)
    assert lines[1].startswith(f"wrote {exported.bundle / 'model.int8.onnx'}: dynamic int8, ")
    assert "of the float graph" in lines[1]
    assert lines[2].startswith("metrics on ") and lines[2].endswith("people.csv (test split), PyTorch -> int8:")
    assert any(line.strip().startswith("accuracy") for line in lines[3:])


def test_the_graph_is_valid_with_a_dynamic_batch_axis(exported: Exported, torch_predictor: Predictor) -> None:
    graph = onnx.load(str(exported.bundle / "model.onnx"))
    onnx.checker.check_model(graph, full_check=True)
    inputs = {value.name: value for value in graph.graph.input}
    assert list(inputs) == torch_predictor.model.input_names
    for value in graph.graph.input:
        assert value.type.tensor_type.shape.dim[0].dim_param == "batch"
    assert inputs["review"].type.tensor_type.shape.dim[1].dim_param not in ("", "batch")  # tokens: free too
    assert [value.name for value in graph.graph.output] == [TARGET]
    properties = {entry.key: entry.value for entry in graph.metadata_props}
    assert properties[WEIGHTS_KEY] == torch_predictor.bundle.manifest["files"]["weights.safetensors"]["sha256"]


@pytest.mark.parametrize("count", [1, 7, 60])
def test_parity_with_pytorch_at_any_batch_size(
    exported: Exported, torch_predictor: Predictor, served: Served, count: int
) -> None:
    arrays = input_arrays(torch_predictor, served.rows[:count])
    expected = torch_predictor.runtime(arrays)[TARGET]
    actual = OnnxRuntime(exported.bundle / "model.onnx")(arrays)[TARGET]
    assert actual.shape == expected.shape == (count,)
    assert float((actual - expected).abs().max()) <= PARITY_TOLERANCE


def test_the_onnx_predictor_shares_the_preprocessing(
    exported: Exported, torch_predictor: Predictor, served: Served
) -> None:
    onnx_model = dp.load(exported.bundle, runtime="onnx")
    assert onnx_model.predictor.runtime.name == "onnx"
    frame = served.frame.drop(columns=[TARGET])
    expected, actual = torch_predictor.predict(frame), onnx_model.predict(frame)
    assert actual[f"{TARGET}_prediction"].tolist() == expected[f"{TARGET}_prediction"].tolist()
    assert np.allclose(actual[f"{TARGET}_probability"], expected[f"{TARGET}_probability"], atol=1e-5)
    assert onnx_model.predict(served.rows[0])[f"{TARGET}_prediction"] == expected[f"{TARGET}_prediction"].iloc[0]


def test_evaluate_runs_on_onnx_runtime(exported: Exported, served: Served) -> None:
    torch_metrics = dp.load(exported.bundle).evaluate(served.frame)
    onnx_metrics = dp.load(exported.bundle, runtime="onnx").evaluate(served.frame)
    assert onnx_metrics[TARGET]["accuracy"] == torch_metrics[TARGET]["accuracy"]
    assert abs(onnx_metrics["loss"] - torch_metrics["loss"]) < 1e-5


def test_the_int8_graph_is_smaller_and_close(exported: Exported, torch_predictor: Predictor, served: Served) -> None:
    float_size = (exported.bundle / "model.onnx").stat().st_size
    int8_size = (exported.bundle / "model.int8.onnx").stat().st_size
    assert int8_size < float_size
    int8 = dp.load(exported.bundle, runtime="onnx", onnx_path=exported.bundle / "model.int8.onnx")
    frame = served.frame.drop(columns=[TARGET])
    expected, actual = torch_predictor.predict(frame), int8.predict(frame)
    agreement = (actual[f"{TARGET}_prediction"] == expected[f"{TARGET}_prediction"]).mean()
    assert agreement >= 0.9
    assert np.abs(actual[f"{TARGET}_probability"] - expected[f"{TARGET}_probability"]).max() < 0.05
    graph = onnx.load(str(exported.bundle / "model.int8.onnx"))
    assert any(
        node.op_type in ("DynamicQuantizeLinear", "MatMulInteger", "DynamicQuantizeMatMul") for node in graph.graph.node
    )


def test_the_server_on_onnx_runtime(exported: Exported, served: Served, torch_predictor: Predictor) -> None:
    with TestClient(create_app(Predictor.from_bundle(exported.bundle, runtime="onnx"))) as client:
        assert client.get("/metadata").json()["runtime"] == "onnx"
        assert "onnxruntime" in client.get("/metadata").json()["versions"]["server"]
        answer = client.post("/predict", json={"rows": served.rows[:4]}).json()["predictions"]
    expected = torch_predictor.predict(served.rows[:4])
    assert [row[f"{TARGET}_prediction"] for row in answer] == [row[f"{TARGET}_prediction"] for row in expected]


def test_without_model_onnx_the_graph_is_exported_in_memory(trained: Trained, tmp_path: Path) -> None:
    bundle = Path(shutil.copytree(trained.result.bundle_dir, tmp_path / "model"))
    model = dp.load(bundle, runtime="onnx")
    expected = dp.load(bundle).predict(trained.data)
    actual = model.predict(trained.data)
    assert np.allclose(actual[f"{TARGET}_probability"], expected[f"{TARGET}_probability"], atol=1e-5)
    assert not (bundle / "model.onnx").exists()


# -- refused graphs and failed exports ---------------------------------------------------------------------


def test_a_graph_of_other_weights_is_refused(exported: Exported, tmp_path: Path) -> None:
    graph = onnx.load(str(exported.bundle / "model.onnx"))
    onnx.helper.set_model_props(graph, {WEIGHTS_KEY: "0" * 64})
    onnx.save(graph, str(tmp_path / "stale.onnx"))
    with pytest.raises(BundleError, match=r"exported from other weights than this bundle.s weights\.safetensors"):
        Predictor.from_bundle(exported.bundle, runtime="onnx", onnx_path=tmp_path / "stale.onnx")


def test_an_unreadable_or_missing_graph_is_refused(exported: Exported, tmp_path: Path) -> None:
    (tmp_path / "junk.onnx").write_bytes(b"not a protobuf at all")
    with pytest.raises(BundleError, match="not a readable ONNX graph"):
        Predictor.from_bundle(exported.bundle, runtime="onnx", onnx_path=tmp_path / "junk.onnx")
    with pytest.raises(BundleError, match="no such ONNX file"):
        Predictor.from_bundle(exported.bundle, runtime="onnx", onnx_path=tmp_path / "absent.onnx")
    with pytest.raises(ConfigError, match="runtime 'tensorrt' is not a choice"):
        Predictor.from_bundle(exported.bundle, runtime="tensorrt")


class ValueBranch(nn.Module):
    """An encoder whose Python branch depends on the values it is given: fine in eager PyTorch, but a graph cannot
    hold it."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(8, width)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        if int(codes.max()) > 2:
            return self.embedding(codes.clamp(max=2))
        return self.embedding(codes)


def test_a_part_that_cannot_be_exported_is_named(trained: Trained, tmp_path: Path) -> None:
    predictor = Predictor.from_bundle(trained.result.bundle_dir)
    position = predictor.model.input_names.index("city")
    width = predictor.model.encoders[position][0].embedding_dim
    predictor.model.encoders[position] = ValueBranch(width)
    with pytest.raises(DeployError) as caught:
        export_onnx(predictor, tmp_path / "model.onnx")
    message = str(caught.value)
    assert "cannot export the model to ONNX: the encoder of input 'city' (ValueBranch) cannot be exported" in message
    assert "data-dependent" in message and "\x1b" not in message and "--runtime torch" in message
    assert not (tmp_path / "model.onnx").exists()


def test_export_needs_a_path_for_an_unsaved_model(trained: Trained) -> None:
    pipeline = dp.Pipeline(trained.pipeline.config)
    pipeline._predictor = Predictor(
        trained.pipeline.config, trained.pipeline.predictor.features, trained.pipeline.predictor.model
    )
    with pytest.raises(ConfigError, match="give the path of the ONNX file"):
        pipeline.export()
    with pytest.raises(ConfigError, match="quantize 'int4' is not a choice"):
        pipeline.export("x.onnx", quantize="int4")


def test_export_on_given_rows_without_a_run(trained: Trained, tmp_path: Path) -> None:
    bundle = Path(shutil.copytree(trained.result.bundle_dir, tmp_path / "alone" / "model"))
    data = pd.read_csv(trained.data).head(30)
    report = dp.load(bundle).export(quantize="int8", data=data)
    assert report.onnx.rows_compared == 30 and report.onnx.max_abs_difference <= PARITY_TOLERANCE
    assert report.evaluated_on == "the data frame"
    assert set(report.metrics) == {"torch", "int8"} and "accuracy" in report.metrics["int8"]
    assert report.quantized.bytes_after < report.quantized.bytes_before
    alone = dp.load(bundle).export(tmp_path / "other.onnx")  # not in a run directory: the example row
    assert alone.onnx.rows_compared == 1 and alone.quantized is None and alone.metrics == {}


# -- the graphs in the bundle's manifest -------------------------------------------------------------------


def test_exported_graphs_enter_the_manifest(exported: Exported) -> None:
    import hashlib
    import json

    files = json.loads((exported.bundle / "manifest.json").read_text())["files"]
    for name in ("model.onnx", "model.int8.onnx"):
        data = (exported.bundle / name).read_bytes()
        assert files[name] == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def test_a_changed_weight_in_the_graph_is_refused_naming_it(exported: Exported, tmp_path: Path) -> None:
    bundle = Path(shutil.copytree(exported.bundle, tmp_path / "model"))
    graph = onnx.load(str(bundle / "model.onnx"))
    weight = next(tensor for tensor in graph.graph.initializer if tensor.data_type == onnx.TensorProto.FLOAT)
    values = onnx.numpy_helper.to_array(weight).copy()
    values.flat[0] += 1.0
    weight.CopyFrom(onnx.numpy_helper.from_array(values, weight.name))
    onnx.save(graph, str(bundle / "model.onnx"))  # the weights digest in the graph still matches
    with pytest.raises(BundleError, match=r"model\.onnx: changed since the bundle was saved"):
        dp.load(bundle, runtime="onnx")


def test_a_graph_the_manifest_does_not_list_is_refused(exported: Exported, tmp_path: Path) -> None:
    import json

    bundle = Path(shutil.copytree(exported.bundle, tmp_path / "model"))
    manifest = json.loads((bundle / "manifest.json").read_text())
    del manifest["files"]["model.onnx"]
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"model\.onnx: not in the bundle's manifest"):
        dp.load(bundle, runtime="onnx")
    assert dp.load(bundle).predictor.runtime_name == "torch"  # the torch runtime never reads it
