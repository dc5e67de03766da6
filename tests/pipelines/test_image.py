"""Image models end to end: train from a folder of class folders or a table of paths, what the run writes
(statistics, cache, misclassified grid), the bundle predicting from paths and base64 alike, evaluation, lazy
decoding in DataLoader workers, seeded augmentation, and images beside table columns in one model."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image

import deepwright as dp
from deepwright.config import load_config
from deepwright.data.io import read_class_folders
from deepwright.data.split import split_rows
from tests.helpers import Outcome, Trained
from tests.images import DIGIT_LABELS, DIGITS, copy_digits, digit_files, image_config, write_image

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CLI = Callable[..., Outcome]


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """A [4, 8] ConvStack trained once on the digits fixture folder (no augmentation, 4 epochs).

    Tests must not modify its run directory or bundle."""
    folder = tmp_path_factory.mktemp("digits_run")
    pipeline = dp.Pipeline.from_config(image_config(epochs=4))
    result = pipeline.fit(DIGITS, output_dir=folder / "runs", run_name="digits", progress=False)
    return Trained(pipeline, result, DIGITS)


@pytest.fixture
def no_image_plots(monkeypatch: pytest.MonkeyPatch) -> None:
    """Skip matplotlib (learning curves, confusion matrix, misclassified grid) in runs whose plots do not matter."""
    monkeypatch.setattr("deepwright.evaluation.run_plots.write_run_plots", lambda *args, **kwargs: [])
    monkeypatch.setattr("deepwright.evaluation.run_plots.write_misclassified", lambda *args: [])


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def state_of(run_dir: Path, name: str = "image") -> dict[str, Any]:
    return json.loads((run_dir / "preprocessing.json").read_text())["inputs"][name]


# -- one run on the digits folder ---------------------------------------------------------------------------


def test_a_class_folder_tree_trains_directly(digits_run: Trained) -> None:
    result = digits_run.result
    assert result.split_sizes == {"train": 12, "validation": 6, "test": 6}
    assert len(result.history) == 4
    for split in ("validation", "test"):
        scores = result.metrics[split]["label"]
        assert 0 <= scores["accuracy"] <= 1
        assert scores["confusion_matrix"]["labels"] == DIGIT_LABELS
        assert sum(map(sum, scores["confusion_matrix"]["counts"])) == 6
    config = yaml.safe_load((result.run_dir / "config.yaml").read_text())
    assert config["input_features"][0]["type"] == "image"


def test_the_preprocessing_holds_the_training_split_statistics(digits_run: Trained) -> None:
    state = state_of(digits_run.result.run_dir)
    assert state["channels"] == 1
    assert state["size"] == [8, 8]
    assert state["keep_aspect_ratio"] is False
    frame = read_class_folders(DIGITS)
    config = load_config(image_config())
    split = split_rows(frame, config.preprocessing.split, stratify_on="label")
    train = np.stack([np.asarray(Image.open(DIGITS / path)) for path in frame["image"].iloc[split.train]]) / 255
    assert state["mean"] == pytest.approx([train.mean()], rel=1e-9)
    assert state["std"] == pytest.approx([train.std()], rel=1e-9)
    everything = np.stack([np.asarray(Image.open(path)) for path in digit_files()]) / 255
    assert state["mean"] != pytest.approx([everything.mean()], rel=1e-6)  # not the whole data's
    bundle = json.loads((digits_run.result.bundle_dir / "preprocessing.json").read_text())
    assert bundle["inputs"]["image"] == state


def test_the_decoded_images_are_cached_beside_the_runs(digits_run: Trained) -> None:
    cache = digits_run.result.run_dir.parent / ".cache"
    assert len(list(cache.glob("images-*.u8"))) == 3  # train, validation, test
    assert len(list(cache.glob("images-*.json"))) == 3
    assert not list(cache.glob("*.partial"))


def test_the_misclassified_grid_is_a_png_in_the_run_and_the_bundle(digits_run: Trained) -> None:
    run_dir = digits_run.result.run_dir
    grid = run_dir / "plots" / "misclassified_image_label.png"
    assert grid in digits_run.result.plots
    assert grid.read_bytes()[:8] == PNG_MAGIC
    with Image.open(grid) as image:
        image.verify()
        assert min(image.size) > 100
    assert (digits_run.result.bundle_dir / "plots" / grid.name).is_file()
    assert (run_dir / "plots" / "confusion_matrix_label.png").is_file()
    assert "](plots/misclassified_image_label.png)" in (run_dir / "report.md").read_text()


def test_the_bundle_predicts_the_same_from_a_path_and_from_base64(digits_run: Trained) -> None:
    model = dp.load(digits_run.result.bundle_dir)
    files = digit_files()[::5]
    by_path = model.predict([{"image": str(path)} for path in files])
    by_base64 = model.predict([{"image": {"base64": b64(path)}} for path in files])
    by_url = model.predict([{"image": f"data:image/png;base64,{b64(path)}"} for path in files])
    by_bytes = model.predict([{"image": path.read_bytes()} for path in files])
    assert by_path == by_base64 == by_url == by_bytes
    assert {row["label_prediction"] for row in by_path} <= set(DIGIT_LABELS)
    assert set(by_path[0]) == {"label_prediction", "label_probability"} | {
        f"label_probability_{label}" for label in DIGIT_LABELS
    }
    single = model.predict({"image": {"base64": b64(files[0])}})
    assert single["label_prediction"] == by_path[0]["label_prediction"]
    assert single["label_probability"] == pytest.approx(by_path[0]["label_probability"], abs=1e-6)


def test_a_bytearray_payload_predicts_like_bytes(digits_run: Trained) -> None:
    model = digits_run.pipeline
    path = digit_files()[0]
    assert model.predict({"image": bytearray(path.read_bytes())}) == model.predict({"image": path.read_bytes()})


def test_the_trained_pipeline_and_the_loaded_bundle_agree(digits_run: Trained) -> None:
    loaded = dp.load(digits_run.result.bundle_dir)
    rows = [{"image": str(path)} for path in digit_files()]
    assert loaded.predict(rows) == digits_run.pipeline.predict(rows)
    evaluated, expected = loaded.evaluate(DIGITS), digits_run.pipeline.evaluate(DIGITS)
    assert evaluated["loss"] == pytest.approx(expected["loss"], rel=1e-6)
    assert evaluated["label"]["confusion_matrix"] == expected["label"]["confusion_matrix"]


def test_a_table_of_relative_paths_resolves_against_its_own_folder(
    digits_run: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = read_class_folders(DIGITS)
    frame["image"] = "../digits/" + frame["image"]
    copy_digits(tmp_path / "digits")
    (tmp_path / "tables").mkdir()
    frame.to_csv(tmp_path / "tables" / "listing.csv", index=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    model = dp.load(digits_run.result.bundle_dir)
    from_file = model.predict(tmp_path / "tables" / "listing.csv")
    from_rows = model.predict([{"image": str(DIGITS / path.removeprefix("../digits/"))} for path in frame["image"]])
    assert from_file["label_prediction"].tolist() == [row["label_prediction"] for row in from_rows]
    np.testing.assert_allclose(
        from_file["label_probability"].to_numpy(), [row["label_probability"] for row in from_rows], atol=1e-6
    )


def test_evaluate_on_the_test_rows_reproduces_the_test_metrics(digits_run: Trained) -> None:
    frame = read_class_folders(DIGITS)
    frame["image"] = [str(DIGITS / path) for path in frame["image"]]
    split = split_rows(frame, digits_run.pipeline.config.preprocessing.split, stratify_on="label")
    metrics = digits_run.pipeline.evaluate(frame.iloc[split.test])
    expected = digits_run.result.metrics["test"]
    assert metrics["loss"] == pytest.approx(expected["loss"], rel=1e-5)
    assert metrics["label"]["accuracy"] == expected["label"]["accuracy"]
    assert metrics["label"]["confusion_matrix"] == expected["label"]["confusion_matrix"]


def test_evaluate_and_predict_commands_on_a_folder(digits_run: Trained, cli: CLI, tmp_path: Path) -> None:
    bundle = digits_run.result.bundle_dir
    completed = cli("evaluate", "--model", bundle, "--data", DIGITS, "--output", "evaluation", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    metrics = json.loads((tmp_path / "evaluation" / "metrics.json").read_text())
    assert sum(map(sum, metrics["data"]["label"]["confusion_matrix"]["counts"])) == 24
    assert (tmp_path / "evaluation" / "plots" / "confusion_matrix_label.png").is_file()
    completed = cli("predict", "--model", bundle, "--data", DIGITS, "--output", "predictions.csv", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    predictions = pd.read_csv(tmp_path / "predictions.csv")
    assert len(predictions) == 24
    assert set(predictions["label_prediction"]) <= set(DIGIT_LABELS)


# -- decoding paths ------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("no_decoding")  # after digits_run (module scope) has decoded the images
def test_a_second_run_reuses_the_cache(digits_run: Trained, monkeypatch: pytest.MonkeyPatch) -> None:
    output = digits_run.result.run_dir.parent
    cached = sorted((output / ".cache").iterdir())

    monkeypatch.setattr("deepwright.evaluation.run_plots.write_run_plots", lambda *args, **kwargs: [])
    monkeypatch.setattr("deepwright.evaluation.run_plots.write_misclassified", lambda *args: [])
    result = dp.Pipeline.from_config(image_config(epochs=4)).fit(
        DIGITS, output_dir=output, run_name="again", progress=False
    )
    assert sorted((output / ".cache").iterdir()) == cached
    for split in ("validation", "test"):  # the same config and seed: the same model
        assert result.metrics[split]["loss"] == pytest.approx(digits_run.result.metrics[split]["loss"], rel=1e-5)


def test_lazy_decoding_in_workers_trains_the_same_model(
    digits_run: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cache_memory_mb: 0`: every split stays a `LazyColumn`, training batches are decoded in DataLoader worker
    processes, and, with no augmentation, the run matches the cached one exactly."""
    import deepwright.data.batches as batches

    calls = []
    original = batches._worker_batches

    def counted(*args: Any) -> Any:
        calls.append(args)
        return original(*args)

    monkeypatch.setattr(batches, "_worker_batches", counted)
    pipeline = dp.Pipeline.from_config(image_config(epochs=4, image={"cache_memory_mb": 0}))
    result = pipeline.fit(DIGITS, output_dir=tmp_path / "runs", run_name="lazy", progress=False)
    assert len(calls) == 4  # one DataLoader per training epoch
    assert not (tmp_path / "runs" / ".cache").exists()
    assert [record["train_loss"] for record in result.history] == pytest.approx(
        [record["train_loss"] for record in digits_run.result.history], rel=1e-5
    )
    for split in ("validation", "test"):
        assert result.metrics[split]["loss"] == pytest.approx(digits_run.result.metrics[split]["loss"], rel=1e-5)
        assert (
            result.metrics[split]["label"]["confusion_matrix"]
            == (digits_run.result.metrics[split]["label"]["confusion_matrix"])
        )
    assert (result.run_dir / "plots" / "misclassified_image_label.png").is_file()
    rows = [{"image": str(path)} for path in digit_files()]
    lazy_predictions = pipeline.predict(rows)
    assert len(lazy_predictions) == 24
    assert [row["label_prediction"] for row in lazy_predictions] == [
        row["label_prediction"] for row in digits_run.pipeline.predict(rows)
    ]
    assert dp.load(result.bundle_dir).predict(rows) == lazy_predictions


@pytest.mark.usefixtures("no_image_plots")
def test_augmentation_is_seeded_and_changes_training(digits_run: Trained, tmp_path: Path) -> None:
    augmentation = {
        "resized_crop": {"probability": 0.5},
        "padded_crop": {"probability": 0.5, "padding": 1},
        "horizontal_flip": {"probability": 0.5},
        "rotation": {"probability": 0.5, "degrees": 15},
        "color_jitter": {"probability": 0.5},
    }

    def run(seed: int, name: str) -> Any:
        config = image_config(epochs=4, seed=seed, image={"augmentation": augmentation})
        return dp.Pipeline.from_config(config).fit(DIGITS, output_dir=tmp_path, run_name=name, progress=False)

    first, again, other = run(42, "first"), run(42, "again"), run(7, "other")
    losses = [[record["train_loss"] for record in result.history] for result in (first, again, other)]
    assert losses[0] == losses[1]
    assert first.metrics == again.metrics
    assert losses[0] != losses[2]
    plain = [record["train_loss"] for record in digits_run.result.history]
    assert losses[0][0] != pytest.approx(plain[0], rel=1e-6)  # the same seed without augmentation trains otherwise
    # Evaluation never augments: the saved model predicts the same thing twice.
    model = dp.load(first.bundle_dir)
    rows = [{"image": str(path)} for path in digit_files()[:6]]
    assert model.predict(rows) == model.predict(rows)


# -- images that differ -------------------------------------------------------------------------------------


@pytest.mark.usefixtures("no_image_plots")
def test_grey_and_colour_images_train_as_three_channels(tmp_path: Path) -> None:
    """Documented: every image is converted to the inferred channel count, 3 when any training image is colour.
    The formats are mixed too: grey PNG, colour JPEG, grey and colour BMP."""
    for index in range(6):
        write_image(tmp_path / "data" / "cat" / f"{index}.png", seed=index)
        write_image(tmp_path / "data" / "dog" / f"{index}.jpg", mode="RGB", seed=10 + index)
    write_image(tmp_path / "data" / "cat" / "extra.bmp", mode="RGB", seed=20)
    write_image(tmp_path / "data" / "dog" / "extra.bmp", seed=21)
    config = image_config(epochs=2, split={"method": "stratified", "fractions": [0.6, 0.2, 0.2], "seed": 0})
    pipeline = dp.Pipeline.from_config(config)
    result = pipeline.fit(tmp_path / "data", output_dir=tmp_path / "runs", progress=False)
    state = state_of(result.run_dir)
    assert state["channels"] == 3
    assert len(state["mean"]) == len(state["std"]) == 3
    grey = write_image(tmp_path / "new-grey.png", seed=30)
    colour = write_image(tmp_path / "new-colour.png", mode="RGB", seed=31)
    predictions = dp.load(result.bundle_dir).predict([{"image": str(grey)}, {"image": str(colour)}])
    assert all(row["label_prediction"] in ("cat", "dog") for row in predictions)


@pytest.mark.usefixtures("no_image_plots")
@pytest.mark.parametrize(
    "image",
    [{}, {"keep_aspect_ratio": True, "encoder": {"type": "resnet", "dim": 4, "blocks": [1, 1]}}],
    ids=["stretched-convstack", "padded-resnet"],
)
def test_images_of_different_sizes_are_resized_to_the_most_common_training_size(
    tmp_path: Path, image: dict[str, Any]
) -> None:
    """Documented: unless `size` is set, every image is resized to the most common training size."""
    sizes = [(8, 8)] * 5 + [(12, 10), (5, 6), (16, 4)]
    for label in ("cat", "dog"):
        for index, size in enumerate(sizes):
            write_image(tmp_path / "data" / label / f"{index}.png", size, seed=index + 100 * (label == "dog"))
    config = image_config(
        epochs=2, image=image, split={"method": "stratified", "fractions": [0.75, 0.125, 0.125], "seed": 0}
    )
    result = dp.Pipeline.from_config(config).fit(tmp_path / "data", output_dir=tmp_path / "runs", progress=False)
    state = state_of(result.run_dir)
    assert state["size"] == [8, 8]
    assert state["keep_aspect_ratio"] is bool(image)
    odd = write_image(tmp_path / "odd.png", (30, 7), seed=5)
    prediction = dp.load(result.bundle_dir).predict({"image": {"base64": b64(odd)}})
    assert prediction["label_prediction"] in ("cat", "dog")


# -- images beside table columns ----------------------------------------------------------------------------


def test_an_image_beside_number_and_category_columns_trains_saves_loads_and_predicts(tmp_path: Path) -> None:
    """One model: the image encoder's vector concatenated with the number and category columns; a binary output
    (so the misclassified grid takes its binary path)."""
    copy_digits(tmp_path / "data" / "images")
    frame = read_class_folders(tmp_path / "data" / "images")
    rng = np.random.default_rng(0)
    frame["image"] = "images/" + frame["image"]
    frame["ink"] = [float(np.asarray(Image.open(tmp_path / "data" / path)).mean()) for path in frame["image"]]
    frame["pen"] = rng.choice(["blue", "black", "red"], len(frame))
    frame["is_one"] = np.where(frame["label"] == "one", "yes", "no")
    frame = frame.drop(columns=["label"])
    frame.to_csv(tmp_path / "data" / "table.csv", index=False)
    config = image_config(
        epochs=3,
        inputs=[{"name": "ink", "type": "number"}, {"name": "pen", "type": "category"}],
        output={"name": "is_one", "type": "binary"},
    )
    pipeline = dp.Pipeline.from_config(config)
    result = pipeline.fit(tmp_path / "data" / "table.csv", output_dir=tmp_path / "runs", progress=False)

    model = pipeline.predictor.model
    assert len(model.encoders) == 3  # the numbers' passthrough block, the image encoder, the category embedding
    assert model.encoders[1].output_size == 8
    seen = []
    hook = model.combiner.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    pipeline.predict({"image": str(tmp_path / "data" / frame["image"][0]), "ink": 10.0, "pen": "red"})
    hook.remove()
    widths = [vector.shape[1] for vector in seen[0]]  # the number, the image's 8 channels, the pen embedding
    assert widths[:2] == [1, 8]
    assert model.combiner.mlp[0].in_features == sum(widths)
    assert (result.run_dir / "plots" / "misclassified_image_is_one.png").is_file()
    assert set(result.metrics["test"]["is_one"]) >= {"accuracy", "roc_auc", "confusion_matrix"}

    saved = pipeline.save(tmp_path / "bundle")
    loaded = dp.load(saved)
    rows = [
        {"image": str(tmp_path / "data" / path), "ink": ink, "pen": pen}
        for path, ink, pen in zip(frame["image"], frame["ink"], frame["pen"])
    ]
    assert loaded.predict(rows) == pipeline.predict(rows)
    assert {row["is_one_prediction"] for row in loaded.predict(rows)} <= {"yes", "no"}
    unseen_pen = {**rows[0], "pen": "green", "image": {"base64": b64(tmp_path / "data" / frame["image"][0])}}
    assert loaded.predict(unseen_pen)["is_one_prediction"] in ("yes", "no")
    table = loaded.predict(tmp_path / "data" / "table.csv")
    assert table["is_one_prediction"].tolist() == [row["is_one_prediction"] for row in loaded.predict(rows)]
    evaluated = loaded.evaluate(tmp_path / "data" / "table.csv")
    assert sum(map(sum, evaluated["is_one"]["confusion_matrix"]["counts"])) == 24


# -- the command line on a folder ---------------------------------------------------------------------------


def test_init_and_train_accept_a_class_folder_tree(cli: CLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("deepwright.evaluation.run_plots.write_run_plots", lambda *args, **kwargs: [])
    copy_digits(tmp_path / "digits")
    completed = cli("init", "--data", "digits", "-o", "config.yaml", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    config = yaml.safe_load((tmp_path / "config.yaml").read_text())
    (image,) = config["input_features"]
    assert image["name"] == "image"
    assert image["type"] == "image"
    assert image["augmentation"]["padded_crop"]["padding"] == 1  # an eighth of 8 pixels
    assert "horizontal_flip" not in image["augmentation"]
    assert config["output_features"] == [{"name": "label", "type": "category"}]
    image["encoder"] = {"dims": [4, 8]}
    config["trainer"].update(epochs=2, checkpoint=False)
    config["trainer"].pop("early_stopping", None)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    completed = cli("train", "--config", "config.yaml", "--data", "digits", "--quiet", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    run_dir = tmp_path / "runs" / "digits"
    assert (run_dir / "model" / "weights.safetensors").is_file()
    assert (run_dir / "plots" / "misclassified_image_label.png").is_file()
    assert state_of(run_dir)["size"] == [8, 8]


def test_the_encoder_carries_the_statistics_as_buffers(digits_run: Trained) -> None:
    """The trained module's encoder holds the training statistics as buffers, moved with the model."""
    encoder = digits_run.pipeline.predictor.model.encoders[0]
    state = state_of(digits_run.result.run_dir)
    assert encoder.mean.flatten().tolist() == pytest.approx(state["mean"])
    assert encoder.std.flatten().tolist() == pytest.approx(state["std"])
    assert not encoder.training
    assert isinstance(encoder.mean, torch.Tensor)


@pytest.mark.usefixtures("no_plots")
def test_an_image_regression_writes_no_misclassified_grid(tmp_path: Path) -> None:
    frame = read_class_folders(DIGITS)
    frame["image"] = [str(DIGITS / path) for path in frame["image"]]
    frame["ink"] = [float(np.asarray(Image.open(path)).mean()) for path in frame["image"]]
    config = image_config(epochs=2, output={"name": "ink", "type": "number"}, split={"method": "random", "seed": 0})
    result = dp.Pipeline.from_config(config).fit(frame, output_dir=tmp_path, progress=False)
    assert {"rmse", "mae", "r2"} <= set(result.metrics["test"]["ink"])
    assert not list((result.run_dir).rglob("misclassified_*.png"))
    prediction = dp.load(result.bundle_dir).predict({"image": frame["image"][0]})
    assert isinstance(prediction["ink_prediction"], float)


def test_init_infers_an_image_column_of_a_table(cli: CLI, tmp_path: Path) -> None:
    copy_digits(tmp_path / "images")
    frame = read_class_folders(tmp_path / "images")
    frame["image"] = "images/" + frame["image"]
    frame.rename(columns={"image": "picture", "label": "digit"}).to_csv(tmp_path / "digits.csv", index=False)
    completed = cli("init", "--data", "digits.csv", "--target", "digit", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    config = yaml.safe_load(completed.stdout)
    assert [(feature["name"], feature["type"]) for feature in config["input_features"]] == [("picture", "image")]
    assert config["output_features"] == [{"name": "digit", "type": "category"}]
    assert set(config["input_features"][0]["augmentation"]) == {"padded_crop", "rotation"}


# -- the misclassified grid ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("count", "channels"), [(3, 1), (7, 3), (0, 1)])
def test_plot_misclassified(tmp_path: Path, count: int, channels: int) -> None:
    from deepwright.evaluation.plots import plot_misclassified

    rng = np.random.default_rng(0)
    pictures = rng.integers(0, 256, (count, channels, 8, 8), dtype=np.uint8)
    truth = np.array(["one"] * count, dtype=object)
    predicted = np.array(["seven"] * count, dtype=object)
    path = tmp_path / "plots" / "grid.png"
    plot_misclassified(pictures, truth, predicted, "label", path)
    assert path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as image:
        width, height = image.size
    assert width >= 200 and height >= 200
    assert [file.name for file in path.parent.iterdir()] == ["grid.png"]  # written atomically, nothing left over
