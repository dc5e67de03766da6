"""Generation speed with and without the key/value cache: tokens/s for 256 new tokens, one sequence at a time.

Two model sizes with a character tokenizer learned on Tiny Shakespeare (the weights are freshly initialised: speed
does not depend on them): nanoGPT's Shakespeare configuration (6 layers, 6 heads, width 384, block 256), in whose
context 256 new tokens fit, and its CPU "baby" configuration (4 layers, 4 heads, width 128, block 64), where the
context restarts from its recent half every 32 tokens. For each: the token loop (`generate_tokens`) with the
cache and without it (every step recomputes the whole context), checked to give the same tokens for the same
seed, and the whole `TextGenerator.generate` call (tokenizing, sampling with top-k 200, decoding) with the cache.
Medians of `--repeats` runs, alternating. Goal: at least 5× with the cache at 256 new tokens.

    .venv/bin/python benchmarks/generate_speed.py [--repeats 3] [--threads N]
"""

from __future__ import annotations

import time
from typing import Any

from _common import SHARED_DATA_DIR, base_parser, emit, environment, log, median, ratio, wait_for_quiet_cpu

CORPUS = SHARED_DATA_DIR / "tinyshakespeare" / "input.txt"
NEW_TOKENS = 256
SIZES = {
    "shakespeare_char (6x384, block 256)": {"layers": 6, "heads": 6, "dim": 384, "block_size": 256},
    "baby (4x128, block 64)": {"layers": 4, "heads": 4, "dim": 128, "block_size": 64},
}


def timed_tokens(model: Any, use_cache: bool, seed: int) -> tuple[float, list[int]]:
    """Seconds to generate `NEW_TOKENS` tokens after a one-token prompt, and the tokens."""
    import torch

    from deepwright.models.sampling import generate_tokens

    generator = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    tokens = list(
        generate_tokens(
            model, [2], max_new_tokens=NEW_TOKENS, temperature=0.8, top_k=200, generator=generator, use_cache=use_cache
        )
    )
    return time.perf_counter() - started, tokens


def measure(name: str, size: dict[str, int], tokenizer: Any, repeats: int) -> dict[str, Any]:
    import torch

    from deepwright.config import load_config
    from deepwright.deploy.generator import TextGenerator
    from deepwright.models.gpt import GPT

    config = load_config({"model_type": "lm", "model": size})
    torch.manual_seed(0)
    model = GPT.from_options(config.model, tokenizer.get_vocab_size()).eval()
    generator = TextGenerator(config, tokenizer, model)
    timed_tokens(model, True, 0)  # warm-up
    cached, uncached, whole, same = [], [], [], True
    for round_number in range(repeats):
        wait_for_quiet_cpu(timeout_s=10)
        seconds_cached, tokens_cached = timed_tokens(model, True, round_number)
        seconds_uncached, tokens_uncached = timed_tokens(model, False, round_number)
        same &= tokens_cached == tokens_uncached
        started = time.perf_counter()
        text = generator.generate("\n", max_new_tokens=NEW_TOKENS, seed=round_number)
        whole.append(NEW_TOKENS / (time.perf_counter() - started))
        cached.append(NEW_TOKENS / seconds_cached)
        uncached.append(NEW_TOKENS / seconds_uncached)
        log(f"{name} round {round_number + 1}: cached {cached[-1]:,.0f}, uncached {uncached[-1]:,.0f} tokens/s")
    result = {
        "model": name,
        "parameters": model.num_parameters(non_embedding=False),
        "cached_tokens_per_second": round(median(cached), 1),
        "uncached_tokens_per_second": round(median(uncached), 1),
        "speedup": ratio(median(cached), median(uncached)),
        "generate_call_tokens_per_second": round(median(whole), 1),
        "same_tokens_with_and_without_cache": same,
        "sample": text[:80],
    }
    result["goal_5x_met"] = result["speedup"] >= 5.0
    return result


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0], repeats=3, data_dir=False)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    import torch

    from deepwright.config import CharTokenizerConfig
    from deepwright.features.tokenization import train_tokenizer

    if args.threads:
        torch.set_num_threads(args.threads)
    text = CORPUS.read_text(encoding="utf-8")
    tokenizer = train_tokenizer(CharTokenizerConfig(type="char"), [text[: int(len(text) * 0.9)]])
    results = [measure(name, size, tokenizer, args.repeats) for name, size in SIZES.items()]
    emit(
        {
            "benchmark": "generate_speed",
            "compares": f"tokens/s for {NEW_TOKENS} new tokens with the key/value cache vs recomputing the context",
            "results": results,
            "environment": environment(),
        }
    )


if __name__ == "__main__":
    main()
