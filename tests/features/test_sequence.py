"""The `sequence` feature: cells read as token lists, a vocabulary from the training split, ids padded at the end,
every encoder type, and padding that never changes an encoding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import TypeAdapter

from deepwright.config import FeatureConfig
from deepwright.features.base import ValueProblem
from deepwright.features.sequence import SequenceFeature, list_cell
from deepwright.features.tokenization import PAD_ID, UNKNOWN_ID


def feature(**options: object) -> SequenceFeature:
    config = TypeAdapter(FeatureConfig).validate_python({"name": "notes", "type": "sequence", **options})
    return SequenceFeature(config, "input")


def cells(*values: object) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = list(values)
    return array


def test_cells_are_spaces_json_lists_or_lists() -> None:
    assert list_cell("C4  E4 G4") == ["C4", "E4", "G4"]
    assert list_cell('["C 4", 60]') == ["C 4", 60]
    assert list_cell(("a", "b")) == ["a", "b"]
    assert list_cell(np.array(["x"])) == ["x"]
    with pytest.raises(ValueError):
        list_cell("[1, 2")


def test_vocabulary_from_training_by_frequency_with_pad_and_unknown() -> None:
    notes = feature()
    notes.fit(cells("C4 E4 C4", ["E4", "C4"], "[60]"))
    ids = notes.transform(cells("C4 G4", "E4 C4 E4", 60))
    c4, e4 = ids[1, 1], ids[1, 0]
    assert c4 == 2 and e4 == 3  # C4 seen 3 times, E4 twice: most frequent first, after <pad> 0 and <unk> 1
    assert ids.tolist() == [[c4, UNKNOWN_ID, PAD_ID], [e4, c4, e4], [4, PAD_ID, PAD_ID]]


def test_min_count_vocab_size_and_lowercase() -> None:
    notes = feature(min_count=2, lowercase=True)
    notes.fit(cells("A a b", "c"))
    assert notes.transform(cells("A b c")).tolist() == [[2, UNKNOWN_ID, UNKNOWN_ID]]
    small = feature(vocab_size=3)
    small.fit(cells("x x y"))
    assert small.vocabulary_size_ == 3


@pytest.mark.parametrize(("truncation", "expected"), [("right", ["a", "b"]), ("left", ["c", "d"])])
def test_max_length_and_truncation(truncation: str, expected: list[str]) -> None:
    notes = feature(max_length=2, truncation=truncation)
    notes.fit(cells("a b c d"))
    vocabulary = notes.tokenizer_.get_vocab()
    assert notes.transform(cells("a b c d")).tolist() == [[vocabulary[token] for token in expected]]
    assert notes.transform(cells("a")).shape == (1, 1)  # padded to the longest of the call, at most max_length


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "sequence is missing"),
        ("", "sequence is missing"),
        ("[]", "sequence is empty"),
        ('["a", null]', "token 2 of the sequence is null"),
        ("[1, 2", "is not a JSON list"),
    ],
)
def test_bad_cells_name_their_position(value: object, message: str) -> None:
    notes = feature()
    with pytest.raises(ValueProblem, match=message) as caught:
        notes.fit(cells("a b", value))
    assert caught.value.position == 1


@pytest.mark.parametrize(
    "encoder",
    [
        {"type": "rnn", "cell": "rnn", "dim": 6},
        {"type": "rnn", "cell": "gru", "dim": 3, "bidirectional": True, "reduction": "attention"},
        {"type": "transformer", "dim": 8, "heads": 2, "layers": 1, "feedforward_dim": 16},
        {"type": "transformer", "dim": 8, "heads": 2, "layers": 1, "positions": "learned", "pooling": "cls"},
    ],
    ids=["rnn", "gru", "transformer", "transformer-learned-cls"],
)
def test_padding_never_changes_an_encoding(encoder: dict) -> None:
    notes = feature(encoder=encoder, embedding_dim=5)
    notes.fit(cells("a b c", "a b c d e f g"))
    torch.manual_seed(0)
    model = notes.build_encoder().eval()
    alone = torch.from_numpy(notes.transform(cells("a c b")))  # (1, 3)
    batch = torch.from_numpy(notes.transform(cells("a c b", "g f e d c b a")))  # (2, 7): row 0 padded
    with torch.no_grad():
        torch.testing.assert_close(model(batch)[0], model(alone)[0], rtol=1e-5, atol=1e-5)
    assert model(batch).shape == (2, notes.width())


def test_convolution_encoder_shape() -> None:
    notes = feature(encoder={"type": "conv1d", "dims": [4, 6], "pools": [1, 1]})
    notes.fit(cells("a b c", "b c"))
    encoded = notes.build_encoder()(torch.from_numpy(notes.transform(cells("a b", "c"))))
    assert encoded.shape == (2, 6) == (2, notes.width())
