"""`TextGenerator`: a language-model bundle's tokenizer and GPT, continuing prompts as a stream of text pieces.

    >>> generator = TextGenerator.from_bundle("runs/shakespeare/model")        # doctest: +SKIP
    >>> generation = generator.stream("ROMEO:", max_new_tokens=100, seed=1)   # doctest: +SKIP
    >>> for piece in generation:                                              # doctest: +SKIP
    ...     print(piece, end="", flush=True)
    >>> generation.finish_reason, generation.notes                            # doctest: +SKIP
    ('length', [])

Pieces are whole characters: bytes of a character that a byte-level BPE token leaves incomplete wait for the
next token. Text that may be the start of a stop string is held back until it is not; the stop string itself is
never written.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError

from deepwright.config import GenerationConfig, LanguageModelConfig
from deepwright.deploy.bundle import Bundle, read_bundle
from deepwright.deploy.served import LoadedModel
from deepwright.errors import BundleError, ConfigError, DataError
from deepwright.features.tokenization import PAD_ID, UNKNOWN_ID, decode, encode_corpus, tokenizer_from_json
from deepwright.models.gpt import GPT
from deepwright.models.sampling import generate_tokens

__all__ = ["Generation", "TextGenerator"]

EMPTY_PROMPT = "\n"  # what an empty prompt starts from (as nanoGPT's sample.py)
_MAX_CHARACTER_BYTES = 4  # a UTF-8 character spans at most 4 bytes, so at most 4 byte-level tokens


class TextGenerator(LoadedModel):
    """A trained language model and its tokenizer, ready to continue prompts (see the module docstring): served by
    `/generate` (see `deepwright.deploy.served.ServedModel`)."""

    can_generate = True  # a prompt in, text out

    def __init__(
        self,
        config: LanguageModelConfig,
        tokenizer: Any,
        model: GPT,
        metrics: dict | None = None,
        *,
        bundle: Bundle | None = None,
    ) -> None:
        super().__init__(config, model, metrics, bundle=bundle)
        self.tokenizer = tokenizer

    @classmethod
    def from_bundle(cls, path: str | Path) -> TextGenerator:
        """Load and verify a language-model bundle written by `deepwright train` or `Pipeline.save`."""
        bundle = read_bundle(path, model_type="lm")
        config = bundle.load_config()
        try:
            tokenizer = tokenizer_from_json(bundle.preprocessing["tokenizer"])
            vocabulary_size = int(bundle.preprocessing["vocabulary_size"])
        except Exception as error:  # a missing key, or JSON that `tokenizers` rejects (it raises plain Exception)
            raise BundleError(f"{bundle.path / 'preprocessing.json'}: no usable tokenizer ({error})") from None
        model = bundle.build_model(lambda: GPT.from_options(config.model, vocabulary_size))
        bundle.load_weights(model)
        return cls(config, tokenizer, model, bundle.metrics, bundle=bundle)

    @property
    def banned_ids(self) -> tuple[int, ...]:
        """Token ids never generated: padding and "unknown" of a tokenizer learned here; none for a checkpoint's
        tokenizer (`init_from`), whose ids 0 and 1 are ordinary tokens."""
        return () if self.config.tokenizer.type == "pretrained" else (PAD_ID, UNKNOWN_ID)

    def preprocessing_state(self) -> dict[str, Any]:
        """What the bundle's preprocessing.json holds: the tokenizer as JSON and its vocabulary size."""
        return {"tokenizer": self.tokenizer.to_str(), "vocabulary_size": self.tokenizer.get_vocab_size()}

    def stream(
        self,
        prompt: str,
        *,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        stop: list[str] | None = None,
    ) -> Generation:
        """Continue `prompt`: a `Generation` to iterate for the pieces of text as they are written.

        Unset options take the bundle's `generation` defaults; `top_k=0` and `top_p=1` turn those cuts off. The
        same `seed` gives the same text; without one each call differs. A prompt longer than the block size keeps
        its most recent tokens, and the generation's `notes` say so.
        """
        options = self._options(max_new_tokens, temperature, top_k, top_p, stop)
        return Generation(self, prompt, options, seed)

    def generate(
        self,
        prompt: str,
        *,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        stop: list[str] | None = None,
    ) -> str:
        """The text that continues `prompt` (the prompt not included); options as in `stream`."""
        generation = self.stream(
            prompt,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            seed=seed,
            stop=stop,
        )
        return "".join(generation)

    def evaluate(self, data: Any) -> dict[str, Any]:
        """Loss and perplexity of the model on the whole text of `data` (read like the training corpus):
        {"loss", "next_token": {"loss", "perplexity", "tokens"}}."""
        from deepwright.data.corpus import read_corpus
        from deepwright.evaluation.language import corpus_loss

        corpus = read_corpus(data, self.config.corpus)
        ids = torch.from_numpy(encode_corpus(self.tokenizer, corpus.text, self.config.tokenizer.type))
        if len(ids) < 2:
            raise DataError("the text has fewer than two tokens; a loss needs at least two", source=corpus.source)
        results = corpus_loss(self.model, ids, self.model.block_size)
        return {"loss": results["loss"], "next_token": results}

    def predict(self, rows: Any) -> Any:
        """A language model has no rows to predict: this raises a `ConfigError` pointing to `generate`."""
        raise ConfigError("this bundle is a language model: it writes text; use generate (deepwright generate)")

    def _options(
        self,
        max_new_tokens: int | None,
        temperature: float | None,
        top_k: int | None,
        top_p: float | None,
        stop: list[str] | None,
    ) -> GenerationConfig:
        given = {
            "max_new_tokens": max_new_tokens,
            "temperature": temperature,
            "top_k": top_k,
            "top_p": top_p,
            "stop": stop,
        }
        chosen = {key: value for key, value in given.items() if value is not None}
        values = {**self.config.generation.model_dump(), **chosen}
        try:
            return GenerationConfig.model_validate(values)
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, issue['loc']))}: {issue['msg']}" for issue in error.errors())
            raise ConfigError(f"generation options: {problems}") from None


class Generation:
    """The text a language model writes for one prompt, produced as it is iterated.

    Before iterating: `notes` (what was done to the prompt) and `prompt_tokens`. While and after: `text` (all
    pieces so far), `new_tokens`, and at the end `finish_reason`: 'length' (max_new_tokens reached) or 'stop'.
    """

    def __init__(self, generator: TextGenerator, prompt: str, options: GenerationConfig, seed: int | None) -> None:
        self.options = options
        self.notes: list[str] = []
        self.text = ""
        self.new_tokens = 0
        self.finish_reason: str | None = None
        self._generator = generator
        self._random = torch.Generator(device=generator.model.token_embedding.weight.device)
        if seed is None:
            self._random.seed()
        else:
            self._random.manual_seed(seed)
        self._prompt_ids = self._encode_prompt(prompt)
        self.prompt_tokens = len(self._prompt_ids)

    def _encode_prompt(self, prompt: str) -> list[int]:
        tokenizer = self._generator.tokenizer
        if not prompt:
            self.notes.append(f"the prompt is empty; starting from {EMPTY_PROMPT!r}")
            prompt = EMPTY_PROMPT
        ids = encode_corpus(tokenizer, prompt, self._generator.config.tokenizer.type).tolist()
        unknown = ids.count(UNKNOWN_ID) if UNKNOWN_ID in self._generator.banned_ids else 0
        if unknown:
            self.notes.append(f"{unknown} prompt characters are not in the model's vocabulary (read as unknown)")
        block_size = self._generator.model.block_size
        if len(ids) > block_size:
            self.notes.append(
                f"the prompt has {len(ids)} tokens, more than the block size {block_size}; "
                f"the model reads its last {block_size}"
            )
            ids = ids[-block_size:]
        return ids

    def __iter__(self) -> Iterator[str]:
        if self.finish_reason is not None:
            raise RuntimeError("a generation can be iterated once; call stream() again for more text")
        options = self.options
        tokens = generate_tokens(
            self._generator.model,
            self._prompt_ids,
            max_new_tokens=options.max_new_tokens,
            temperature=options.temperature,
            top_k=options.top_k or None,
            top_p=options.top_p,
            generator=self._random,
            banned=self._generator.banned_ids,  # padding never occurs in a corpus; "unknown" has no text to write
        )
        stops = [stop for stop in options.stop if stop]
        pending: list[int] = []  # tokens not yet turned into text (an incomplete character)
        held = ""  # decoded text held back: it may be the start of a stop string
        self.finish_reason = "length"
        for token in tokens:
            self.new_tokens += 1
            pending.append(token)
            decoded = decode(self._generator.tokenizer, pending)
            if decoded.endswith("\ufffd") and len(pending) < _MAX_CHARACTER_BYTES:
                continue  # most likely a character whose bytes are not all there yet
            pending.clear()
            held += decoded
            cut = _first_stop(held, stops)
            if cut is not None:
                held = held[:cut]
                self.finish_reason = "stop"
                break
            keep = _stop_prefix_length(held, stops)
            piece, held = held[: len(held) - keep], held[len(held) - keep :]
            if piece:
                self.text += piece
                yield piece
        if self.finish_reason == "length" and pending:
            held += decode(self._generator.tokenizer, pending)
        if held:
            self.text += held
            yield held


def _first_stop(text: str, stops: list[str]) -> int | None:
    """Where the first stop string in `text` begins, or None."""
    positions = [text.find(stop) for stop in stops]
    found = [position for position in positions if position >= 0]
    return min(found) if found else None


def _stop_prefix_length(text: str, stops: list[str]) -> int:
    """The length of the longest end of `text` that begins some stop string (text to hold back)."""
    longest = 0
    for stop in stops:
        for length in range(min(len(stop) - 1, len(text)), longest, -1):
            if stop.startswith(text[-length:]):
                longest = length
                break
    return longest
