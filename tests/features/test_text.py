"""The text feature: tokenizers (word, char, BPE), encoders (bag, rnn, transformer, conv1d) reusing the sequence
blocks, text beside table columns in one model, empty and missing texts, and a bundle round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import deepwright as dp
from deepwright.config import TextFeatureConfig
from deepwright.errors import DataError
from deepwright.features.text import TextFeature
from deepwright.features.tokenization import PAD_ID, UNKNOWN_ID

pytestmark = pytest.mark.usefixtures("no_plots")

GOOD = ["great", "lovely", "wonderful", "superb", "fine"]
BAD = ["awful", "terrible", "boring", "dreadful", "poor"]


def reviews(rows: int = 160, seed: int = 0) -> pd.DataFrame:
    """Short reviews whose label follows their adjectives, beside a noise number column."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, rows)
    texts = [
        " ".join(["the film was", *rng.choice(GOOD if positive else BAD, 2), "and", rng.choice(GOOD + BAD)])
        for positive in label
    ]
    return pd.DataFrame({"review": texts, "stars": rng.normal(size=rows), "label": np.where(label, "pos", "neg")})


def config(encoder: dict, **text: object) -> dict:
    return {
        "input_features": [
            {"name": "review", "type": "text", "encoder": encoder, "embedding_dim": 16, **text},
            {"name": "stars", "type": "number"},
        ],
        "output_features": [{"name": "label", "type": "binary"}],
        "combiner": {"dims": [16]},
        "preprocessing": {"split": {"method": "stratified", "fractions": [0.7, 0.15, 0.15], "seed": 1}},
        "trainer": {"epochs": 12, "batch_size": 16, "optimizer": {"type": "adam", "lr": 0.01}},
    }


ENCODERS = {
    "bag": {"type": "bag", "dim": 16},
    "rnn": {"type": "rnn", "cell": "gru", "dim": 16},
    "transformer": {"type": "transformer", "dim": 16, "heads": 2, "layers": 1, "pooling": "cls"},
    "conv1d": {"type": "conv1d", "dims": [16, 16], "norm": None},
}


@pytest.mark.parametrize("name", list(ENCODERS))
def test_every_encoder_learns_text_beside_a_table_column(name: str, tmp_path: Path) -> None:
    pipeline = dp.Pipeline.from_config(config(ENCODERS[name]))
    result = pipeline.fit(reviews(), output_dir=tmp_path, progress=False)
    assert result.metrics["test"]["label"]["accuracy"] >= 0.8, name
    loaded = dp.load(result.bundle_dir)
    row = {"review": "the film was superb and lovely", "stars": 0.0}
    assert loaded.predict(row) == pipeline.predict(row)
    assert loaded.predict(row)["label_prediction"] == "pos"


def test_the_sequence_encoders_are_the_shared_blocks() -> None:
    from deepwright.models.recurrent import Recurrent
    from deepwright.models.sequence_encoders import TokenSequenceEncoder
    from deepwright.models.transformer import TransformerEncoder

    feature = TextFeature(TextFeatureConfig(name="t", type="text", encoder=ENCODERS["rnn"]), "input")
    feature.fit(np.array(["a b c", "b c d"], dtype=object))
    encoder = feature.build_encoder()
    assert isinstance(encoder, TokenSequenceEncoder) and isinstance(encoder.block, Recurrent)
    assert feature.width() == encoder.output_size == 16
    feature = TextFeature(TextFeatureConfig(name="t", type="text", encoder=ENCODERS["transformer"]), "input")
    feature.fit(np.array(["a b c"], dtype=object))
    assert isinstance(feature.build_encoder().block, TransformerEncoder)


@pytest.mark.parametrize("name", ["rnn", "transformer", "conv1d"])
def test_empty_texts_read_as_one_unknown_token(name: str) -> None:
    options = TextFeatureConfig(name="t", type="text", encoder=ENCODERS[name], embedding_dim=8)
    feature = TextFeature(options, "input")
    feature.fit(np.array(["good film", "bad film"], dtype=object))
    ids = feature.transform(np.array(["", None, "good film"], dtype=object))
    assert ids[:2].tolist() == [[UNKNOWN_ID, PAD_ID], [UNKNOWN_ID, PAD_ID]]
    encoded = feature.build_encoder().eval()(torch.from_numpy(ids))
    assert encoded.shape == (3, feature.width()) and torch.isfinite(encoded).all()


def test_a_missing_text_with_strategy_error_names_the_row(tmp_path: Path) -> None:
    frame = reviews(40)
    frame.loc[7, "review"] = None
    settings = config(ENCODERS["bag"], missing={"strategy": "error"})
    with pytest.raises(DataError, match=r"row 8, column 'review': text is missing"):
        dp.Pipeline.from_config(settings).fit(frame, output_dir=tmp_path, progress=False)
    assert not tmp_path.joinpath("the_data_frame").exists()


def test_every_training_text_empty_is_refused(tmp_path: Path) -> None:
    frame = reviews(40)
    frame["review"] = ""
    with pytest.raises(DataError, match="column 'review': every training text is empty"):
        dp.Pipeline.from_config(config(ENCODERS["bag"])).fit(frame, output_dir=tmp_path, progress=False)


@pytest.mark.parametrize("tokenizer", [{"type": "char"}, {"type": "bpe", "vocab_size": 300}], ids=["char", "bpe"])
def test_character_and_bpe_tokenizers_classify_and_travel_in_the_bundle(tokenizer: dict, tmp_path: Path) -> None:
    settings = config(ENCODERS["bag"], tokenizer=tokenizer, max_length=64)
    pipeline = dp.Pipeline.from_config(settings)
    result = pipeline.fit(reviews(), output_dir=tmp_path, progress=False)
    assert result.metrics["test"]["label"]["accuracy"] >= 0.7
    rows = reviews(10, seed=5).drop(columns="label")
    assert dp.load(result.bundle_dir).predict(rows).equals(pipeline.predict(rows))


def test_padding_to_max_length() -> None:
    options = TextFeatureConfig(name="t", type="text", padding="max_length", max_length=12)
    feature = TextFeature(options, "input")
    feature.fit(np.array(["a b", "c"], dtype=object))
    assert feature.transform(np.array(["a"], dtype=object)).shape == (1, 12)
