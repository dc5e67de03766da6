"""The trained bundles the image and audio command-line tests share: one each per session."""

from __future__ import annotations

from pathlib import Path

import pytest

import deepwright as dp
from tests.audio import FSDD, quick
from tests.images import DIGITS, image_config


@pytest.fixture(scope="session")
def image_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-epoch digits model's bundle (no plots); tests must not modify it."""
    folder = tmp_path_factory.mktemp("image_bundle")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("deepwright.evaluation.run_plots.write_run_plots", lambda *args, **kwargs: [])
        patch.setattr("deepwright.evaluation.run_plots.write_misclassified", lambda *args: [])
        result = dp.Pipeline.from_config(image_config(epochs=1)).fit(
            DIGITS, output_dir=folder / "runs", run_name="digits", progress=False
        )
    return result.bundle_dir


@pytest.fixture(scope="session")
def audio_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-epoch spoken-digit model's bundle (no plots); tests must not modify it."""
    from deepwright.data.infer import infer_config
    from deepwright.data.io import read_table

    folder = tmp_path_factory.mktemp("audio_bundle")
    config = quick(infer_config(read_table(FSDD / "manifest.csv"), "digit").config)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("deepwright.evaluation.run_plots.write_run_plots", lambda *args, **kwargs: [])
        result = dp.Pipeline.from_config(config).fit(
            FSDD / "manifest.csv", output_dir=folder / "runs", run_name="fsdd", progress=False
        )
    return result.bundle_dir
