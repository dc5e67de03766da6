"""Bundles: a round trip gives identical predictions; a changed, missing or foreign file is refused by name;
nothing is ever unpickled."""

from __future__ import annotations

import ast
import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import deepwright as dp
from deepwright.deploy.bundle import BUNDLE_FORMAT, read_bundle, write_bundle
from deepwright.deploy.forecaster import Forecaster
from deepwright.deploy.generator import TextGenerator
from deepwright.deploy.predictor import Predictor
from deepwright.errors import BundleError
from tests.helpers import Trained, make_frame

SOURCE = Path(dp.__file__).parent


@pytest.fixture
def bundle(trained: Trained, tmp_path: Path) -> Path:
    """A private copy of the session's bundle, free to damage."""
    return Path(shutil.copytree(trained.result.bundle_dir, tmp_path / "model"))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_bundle_files_and_manifest(bundle: Path) -> None:
    names = sorted(p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file())
    assert names == [
        "config.json",
        "manifest.json",
        "metrics.json",
        "plots/confusion_matrix_label.png",
        "plots/learning_curves.png",
        "preprocessing.json",
        "weights.safetensors",
    ]
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["format"] == BUNDLE_FORMAT
    assert manifest["format_version"] == 1
    assert set(manifest["versions"]) >= {"deepwright", "torch", "numpy", "python"}
    assert sorted(manifest["files"]) == [name for name in names if name != "manifest.json"]
    for name, entry in manifest["files"].items():
        assert entry["sha256"] == sha256(bundle / name)
        assert entry["bytes"] == (bundle / name).stat().st_size


def test_bundle_is_data_only(bundle: Path) -> None:
    for name in ("config.json", "preprocessing.json", "metrics.json", "manifest.json"):
        json.loads((bundle / name).read_text())
    tensors = load_file(bundle / "weights.safetensors")
    assert tensors
    assert all(isinstance(tensor, torch.Tensor) for tensor in tensors.values())
    assert not any(p.suffix in (".pt", ".pkl", ".pickle", ".bin") for p in bundle.rglob("*"))


def test_round_trip_gives_identical_predictions(trained: Trained, bundle: Path) -> None:
    frame = make_frame(40, seed=5)
    loaded = dp.load(bundle)
    assert loaded.predict(frame).equals(trained.pipeline.predict(frame))
    assert loaded.config == trained.pipeline.config
    assert loaded.predictor.metrics == trained.result.metrics


def test_saving_again_replaces_the_bundle_atomically(trained: Trained, tmp_path: Path) -> None:
    target = tmp_path / "saved"
    trained.pipeline.save(target)
    trained.pipeline.save(target)
    assert (target / "manifest.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["saved"]  # no staging or retired folders left
    assert dp.load(target).predict(make_frame(5)).equals(trained.pipeline.predict(make_frame(5)))


def test_a_changed_weight_file_is_refused(bundle: Path) -> None:
    weights = bundle / "weights.safetensors"
    tensors = load_file(weights)
    name = next(iter(tensors))
    tensors[name] = tensors[name] + 1.0
    save_file(tensors, weights, metadata={"format": BUNDLE_FORMAT})
    with pytest.raises(BundleError) as caught:
        dp.load(bundle)
    assert "weights.safetensors" in str(caught.value)
    assert "sha256" in str(caught.value)


def test_a_changed_preprocessing_file_is_refused(bundle: Path) -> None:
    path = bundle / "preprocessing.json"
    path.write_text(path.read_text().replace("Lyon", "Lyons"))
    with pytest.raises(BundleError, match=r"preprocessing\.json.*sha256"):
        read_bundle(bundle)


@pytest.mark.parametrize("name", ["weights.safetensors", "config.json", "plots/learning_curves.png"])
def test_a_missing_file_is_refused_by_name(bundle: Path, name: str) -> None:
    (bundle / name).unlink()
    with pytest.raises(BundleError) as caught:
        dp.load(bundle)
    assert name.split("/")[-1] in str(caught.value)
    assert "missing" in str(caught.value)


def test_a_manifest_that_omits_a_required_file_is_refused(bundle: Path) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    del manifest["files"]["weights.safetensors"]
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"does not list weights\.safetensors"):
        read_bundle(bundle)


def test_weights_that_do_not_fit_the_model_are_refused(bundle: Path) -> None:
    weights = bundle / "weights.safetensors"
    tensors = load_file(weights)
    name = next(iter(tensors))
    tensors[name] = torch.zeros(1)
    save_file(tensors, weights)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"]["weights.safetensors"]["sha256"] = sha256(weights)
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="do not fit the model"):
        dp.load(bundle)


def test_not_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no bundle here"):
        dp.load(tmp_path / "nothing")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(BundleError, match="no bundle here"):
        dp.load(tmp_path / "file.txt")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BundleError, match=r"manifest\.json"):
        dp.load(empty)


def test_a_foreign_manifest_is_refused(bundle: Path) -> None:
    (bundle / "manifest.json").write_text(json.dumps({"format": "something-else", "files": {}}))
    with pytest.raises(BundleError, match="not a deepwright bundle"):
        read_bundle(bundle)
    (bundle / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match="cannot be read as JSON"):
        read_bundle(bundle)


def test_a_newer_format_asks_to_upgrade(bundle: Path) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["format_version"] = 99
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="newer deepwright"):
        read_bundle(bundle)


def test_writing_over_a_folder_that_is_not_a_bundle_is_refused(trained: Trained, tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(BundleError, match="not a deepwright bundle"):
        write_bundle(
            folder,
            config={},
            preprocessing={},
            model=trained.pipeline.predictor.model,
            metrics={},
        )
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_torch_load_is_never_used_without_weights_only() -> None:
    """Every torch.load call in the package passes weights_only=True, and nothing imports pickle."""
    calls = 0
    for path in SOURCE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                modules = [alias.name for alias in node.names] + [getattr(node, "module", None) or ""]
                assert not any(m.split(".")[0] in ("pickle", "dill", "joblib") for m in modules), path
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load":
                owner = node.func.value
                if isinstance(owner, ast.Name) and owner.id == "torch":
                    calls += 1
                    keywords = {keyword.arg: keyword.value for keyword in node.keywords}
                    flag = keywords.get("weights_only")
                    assert isinstance(flag, ast.Constant) and flag.value is True, f"{path}:{node.lineno}"
    assert calls >= 1  # the checkpoint reader; if it moves, this test must still find it


LOADERS = {"ecd": Predictor.from_bundle, "forecast": Forecaster.from_bundle, "lm": TextGenerator.from_bundle}
LOADER_NAMES = {"ecd": "Predictor.from_bundle", "forecast": "Forecaster.from_bundle", "lm": "TextGenerator.from_bundle"}


@pytest.mark.parametrize(
    ("kind", "loader"), [(kind, loader) for kind in LOADERS for loader in LOADERS if kind != loader]
)
def test_a_bundle_of_another_kind_is_refused_naming_its_loader(kind: str, loader: str, tmp_path: Path) -> None:
    path = write_bundle(
        tmp_path / "model", config={"model_type": kind}, preprocessing={}, model=torch.nn.Linear(1, 1), metrics={}
    )
    with pytest.raises(BundleError) as caught:
        LOADERS[loader](path)
    assert str(caught.value) == (
        f"{path}: a bundle of model_type {kind!r}, not {loader!r}; "
        f"load it with {LOADER_NAMES[kind]} (or deepwright.load, which reads every kind)"
    )


# -- broken and hostile bundles: refused naming the file, before anything is allocated or served ---------------


def rehash(bundle: Path, *names: str) -> None:
    """Make the manifest agree with the files `names` again (as someone who edits a bundle by hand would)."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    for name in names:
        manifest["files"][name] = {"sha256": sha256(bundle / name), "bytes": (bundle / name).stat().st_size}
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def test_weights_that_are_not_safetensors_are_refused(bundle: Path) -> None:
    (bundle / "weights.safetensors").write_bytes(b"\x80\x04\x95 a pickle posing as safetensors" * 10)
    rehash(bundle, "weights.safetensors")
    with pytest.raises(BundleError, match=r"weights\.safetensors: not a safetensors file"):
        dp.load(bundle)


@pytest.mark.parametrize(
    ("manifest", "words"),
    [
        ([1, 2], "holds a JSON list, not an object"),
        ("bundle", "holds a JSON str, not an object"),
        (None, "holds a JSON NoneType, not an object"),
        ({"format": BUNDLE_FORMAT, "files": []}, "not a deepwright bundle manifest"),
        ({"format": BUNDLE_FORMAT, "format_version": "1", "files": {}}, "format_version is not a whole number"),
    ],
)
def test_a_manifest_that_is_json_but_not_a_manifest_is_refused(bundle: Path, manifest: object, words: str) -> None:
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"manifest\.json") as caught:
        dp.load(bundle)
    assert words in str(caught.value)


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ("0" * 64, "has no sha256"),
        ({"sha256": 5, "bytes": 1}, "has no sha256"),
        ({"sha256": "zz", "bytes": 1}, "has no sha256"),
        ({"sha256": "0" * 64, "bytes": "many"}, "has no size"),
    ],
)
def test_manifest_entries_of_the_wrong_type_are_refused(bundle: Path, entry: object, words: str) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"]["config.json"] = entry
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"manifest\.json: the entry of 'config\.json'") as caught:
        read_bundle(bundle)
    assert words in str(caught.value)


@pytest.mark.parametrize("name", ["../outside.txt", "plots/../../outside.txt", "/etc/hostname", "", ".", "C:/x"])
def test_manifest_entries_that_leave_the_bundle_are_refused(bundle: Path, name: str) -> None:
    outside = bundle.parent / "outside.txt"
    outside.write_text("secret")
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"][name] = {"sha256": sha256(outside), "bytes": outside.stat().st_size}
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="a path outside the bundle"):
        read_bundle(bundle)


def test_a_link_leading_out_of_the_bundle_is_refused(bundle: Path) -> None:
    outside = bundle.parent / "secret.png"
    outside.write_bytes(b"\x89PNG not yours")
    (bundle / "plots" / "learning_curves.png").unlink()
    (bundle / "plots" / "learning_curves.png").symlink_to(outside)
    rehash(bundle, "plots/learning_curves.png")
    with pytest.raises(BundleError, match=r"learning_curves\.png: leads outside the bundle"):
        read_bundle(bundle)
    (bundle / "plots" / "learning_curves.png").unlink()
    shutil.move(bundle / "config.json", bundle.parent / "config.json")
    (bundle / "config.json").symlink_to(bundle.parent / "config.json")
    with pytest.raises(BundleError, match=r"config\.json: leads outside the bundle"):
        read_bundle(bundle)


def test_a_config_that_no_longer_matches_the_preprocessing_is_refused(bundle: Path) -> None:
    config = json.loads((bundle / "config.json").read_text())
    config["input_features"][0]["name"] = "renamed"
    (bundle / "config.json").write_text(json.dumps(config))
    rehash(bundle, "config.json")
    with pytest.raises(BundleError, match=r"preprocessing\.json|config\.json"):
        dp.load(bundle)
    preprocessing = json.loads((bundle / "preprocessing.json").read_text())
    (bundle / "preprocessing.json").write_text(json.dumps({name: "garbage" for name in preprocessing}))
    rehash(bundle, "preprocessing.json")
    with pytest.raises(BundleError, match=r"preprocessing\.json"):
        dp.load(bundle)


def test_a_config_that_is_not_a_config_is_refused_naming_it(bundle: Path) -> None:
    (bundle / "config.json").write_text(json.dumps({"model_type": "ecd", "trainer": {"epochs": "ten"}}))
    rehash(bundle, "config.json")
    with pytest.raises(BundleError, match=r"config\.json: not a valid config"):
        dp.load(bundle)


def test_a_config_whose_layers_cannot_fit_is_refused_before_allocating(bundle: Path) -> None:
    import resource

    config = json.loads((bundle / "config.json").read_text())
    config["combiner"]["dims"] = [10**6, 10**6]  # a 10^12-parameter layer: 4 TB
    (bundle / "config.json").write_text(json.dumps(config))
    rehash(bundle, "config.json")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(BundleError, match=r"config\.json: describes a model of 4,0\d\d,\d{3},\d{3},\d{3} bytes"):
        dp.load(bundle)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # kB: nothing of that size


def test_a_language_model_with_an_impossible_vocabulary_is_refused(tmp_path: Path) -> None:
    from deepwright.config import load_config
    from deepwright.features.tokenization import train_tokenizer

    config = {"model_type": "lm", "tokenizer": {"type": "char"}, "model": {"layers": 1, "heads": 1, "dim": 8}}
    tokenizer = train_tokenizer(load_config(config).tokenizer, ["to be or not"])
    path = write_bundle(
        tmp_path / "model",
        config=config,
        preprocessing={"tokenizer": tokenizer.to_str(), "vocabulary_size": 10**13},
        model=torch.nn.Linear(1, 1),
        metrics={},
    )
    with pytest.raises(BundleError, match=r"config\.json: describes a model of .* bytes of parameters"):
        TextGenerator.from_bundle(path)
