"""A tiny randomly initialised GPT-2 checkpoint (2 layers of width 32, 64 positions) written with transformers'
`save_pretrained`, and a byte-level BPE tokenizer.json trained on the Shakespeare fixture, for tests of
`init_from` that never download anything."""

from __future__ import annotations

from pathlib import Path

SHAKESPEARE = Path(__file__).parent / "fixtures" / "text" / "shakespeare.txt"
VOCABULARY_SIZE = 300  # the 256 bytes, <|endoftext|>, and 43 merges
END_OF_TEXT = "<|endoftext|>"
SCALE = 5.0  # the random weights are GPT-2's initial ones times this


def write_gpt2_tokenizer(folder: Path, vocabulary_size: int = VOCABULARY_SIZE) -> int:
    """A GPT-2-style byte-level BPE tokenizer.json in `folder`, trained on the Shakespeare fixture; its size."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocabulary_size,
        special_tokens=[END_OF_TEXT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator([SHAKESPEARE.read_text(encoding="utf-8")], trainer=trainer)
    tokenizer.save(str(folder / "tokenizer.json"))
    return tokenizer.get_vocab_size()


def write_gpt2_checkpoint(folder: Path, *, seed: int = 0) -> Path:
    """A tiny random GPT-2 (`GPT2LMHeadModel`) and its tokenizer saved in `folder` (config.json,
    model.safetensors, tokenizer.json)."""
    import torch
    import transformers

    folder.mkdir(parents=True, exist_ok=True)
    size = write_gpt2_tokenizer(folder)
    assert size == VOCABULARY_SIZE, size
    torch.manual_seed(seed)
    config = transformers.GPT2Config(
        n_layer=2, n_head=2, n_embd=32, n_positions=64, vocab_size=size, bos_token_id=0, eos_token_id=0
    )
    model = transformers.GPT2LMHeadModel(config)
    with torch.no_grad():  # larger weights than GPT-2's start, and layer norms and biases not 1 and 0: every
        for name, parameter in model.named_parameters():  # choice (the GELU, the epsilon, a bias) shows in the logits
            if name.endswith("bias") or "ln_" in name:
                parameter.add_(0.1 * torch.randn_like(parameter))
            else:
                parameter.mul_(SCALE)
    model.save_pretrained(folder, safe_serialization=True)
    return folder


def gpt2_logits(folder: Path, ids: list[int]) -> object:
    """transformers' logits (1, T, V) of the checkpoint in `folder` for the token `ids`."""
    import torch
    import transformers

    model = transformers.GPT2LMHeadModel.from_pretrained(folder).eval()
    with torch.no_grad():
        return model(torch.tensor([ids])).logits
