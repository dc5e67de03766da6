"""Tiny randomly initialised Hugging Face checkpoints (BERT, DistilBERT, RoBERTa) written to a folder, with a
WordPiece tokenizer.json over a small vocabulary, for tests that never download anything."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

POSITIVE = ["good", "great", "fun", "lovely", "superb", "brilliant"]
NEGATIVE = ["bad", "awful", "boring", "dull", "poor", "terrible"]
NEUTRAL = ["the", "a", "movie", "film", "is", "was", "plot", "and", "very", "this"]
WORDS = POSITIVE + NEGATIVE + NEUTRAL

# model type → (special tokens in id order, its [CLS]-like and [SEP]-like tokens, pad token)
SPECIALS = {
    "bert": (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], "[CLS]", "[SEP]", "[PAD]"),
    "distilbert": (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], "[CLS]", "[SEP]", "[PAD]"),
    "roberta": (["<s>", "<pad>", "</s>", "<unk>", "<mask>"], "<s>", "</s>", "<pad>"),
}


def write_tokenizer(folder: Path, kind: str = "bert", extra_words: int = 0) -> int:
    """A WordPiece tokenizer.json in `folder` over `WORDS` (and `extra_words` more); its vocabulary size."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    specials, first, last, _ = SPECIALS[kind]
    tokens = [*specials, *WORDS, "##s", "##ly", *(f"word{index}" for index in range(extra_words))]
    vocabulary = {token: index for index, token in enumerate(tokens)}
    tokenizer = Tokenizer(models.WordPiece(vocabulary, unk_token=specials[1] if kind != "roberta" else "<unk>"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{first} $A {last}",
        pair=f"{first} $A {last} $B:1 {last}:1",
        special_tokens=[(first, vocabulary[first]), (last, vocabulary[last])],
    )
    tokenizer.save(str(folder / "tokenizer.json"))
    return len(vocabulary)


def write_checkpoint(folder: Path, kind: str = "bert", *, seed: int = 0) -> Path:
    """A tiny random `kind` model (2 layers of width 32) saved with safetensors in `folder`, with its tokenizer."""
    import torch
    import transformers

    transformers.utils.logging.disable_progress_bar()
    folder.mkdir(parents=True, exist_ok=True)
    size = write_tokenizer(folder, kind)
    torch.manual_seed(seed)
    if kind == "distilbert":
        config = transformers.DistilBertConfig(
            vocab_size=size, dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=512
        )
    else:
        settings = {"vocab_size": size, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2}
        settings |= {"intermediate_size": 64, "max_position_embeddings": 514 if kind == "roberta" else 512}
        if kind == "roberta":
            config = transformers.RobertaConfig(**settings, pad_token_id=1, bos_token_id=0, eos_token_id=2)
        else:
            config = transformers.BertConfig(**settings)
    transformers.AutoModel.from_config(config).save_pretrained(folder, safe_serialization=True)
    return folder


def reviews(rows: int, seed: int = 0) -> pd.DataFrame:
    """Generated reviews: a few neutral words around sentiment words; the label is the sentiment's."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(rows):
        positive = bool(rng.integers(2))
        words = list(rng.choice(NEUTRAL, size=rng.integers(2, 6)))
        words += list(rng.choice(POSITIVE if positive else NEGATIVE, size=rng.integers(1, 3)))
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append("positive" if positive else "negative")
    return pd.DataFrame({"review": texts, "sentiment": labels})
