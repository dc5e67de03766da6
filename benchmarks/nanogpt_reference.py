"""A hand-written GPT training loop in plain PyTorch, the way nanoGPT writes it (model.py + train.py, condensed): the
reference that benchmarks/gpt_loop.py runs beside `deepwright train` in the same session.

Character-level Tiny Shakespeare, nanoGPT's split (first 90 % train), nanoGPT's model (pre-norm blocks, causal
`scaled_dot_product_attention`, GELU MLP, no biases, tied embedding, GPT-2 initialisation) and training
(AdamW betas 0.9/0.99, weight decay 0.1 on matrices only, 100 warm-up steps then cosine decay to lr/10, gradient
clipping at 1.0, random blocks drawn with torch.randint and stacked). It imports nothing from deepwright.

    python benchmarks/nanogpt_reference.py --data ../shared/data/tinyshakespeare/input.txt [--iters 2000]

Prints one JSON object on its last line: training tokens/s (the steps only, evaluation excluded), the validation
loss over the whole validation text (consecutive blocks, as deepwright's metrics.json) and nanoGPT's own estimate
(20 random batches), and the non-embedding parameter count.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch
from torch import nn
from torch.nn import functional as F


class CausalSelfAttention(nn.Module):
    def __init__(self, n_embd: int, n_head: int) -> None:
        super().__init__()
        self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=False)
        self.c_proj = nn.Linear(n_embd, n_embd, bias=False)
        self.n_head = n_head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, n_embd: int) -> None:
        super().__init__()
        self.c_fc = nn.Linear(n_embd, 4 * n_embd, bias=False)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * n_embd, n_embd, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(self.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, n_embd: int, n_head: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, bias=False)
        self.attn = CausalSelfAttention(n_embd, n_head)
        self.ln_2 = nn.LayerNorm(n_embd, bias=False)
        self.mlp = MLP(n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, vocab_size: int, block_size: int, n_layer: int, n_head: int, n_embd: int) -> None:
        super().__init__()
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        self.h = nn.ModuleList([Block(n_embd, n_head) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd, bias=False)
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        self.wte.weight = self.lm_head.weight  # weight tying
        self.apply(self._init_weights)
        for name, parameter in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(parameter, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        pos = torch.arange(0, idx.size(1), dtype=torch.long)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1)) if targets is not None else None
        return logits, loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--iters", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(1337)
    batch_size, block_size, n_layer, n_head, n_embd = 12, 64, 4, 4, 128
    learning_rate, min_lr, warmup_iters, lr_decay_iters = 1e-3, 1e-4, 100, args.iters

    with open(args.data, encoding="utf-8") as file:
        text = file.read()
    chars = sorted(set(text))
    stoi = {ch: i for i, ch in enumerate(chars)}
    data = torch.tensor([stoi[ch] for ch in text], dtype=torch.long)
    n = int(0.9 * len(data))
    train_data, val_data = data[:n], data[n:]

    def get_batch(split: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ix = torch.randint(len(split) - block_size, (batch_size,))
        x = torch.stack([split[i : i + block_size] for i in ix])
        y = torch.stack([split[i + 1 : i + 1 + block_size] for i in ix])
        return x, y

    def get_lr(it: int) -> float:
        if it < warmup_iters:
            return learning_rate * (it + 1) / (warmup_iters + 1)
        if it > lr_decay_iters:
            return min_lr
        decay_ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
        return min_lr + 0.5 * (1.0 + math.cos(math.pi * decay_ratio)) * (learning_rate - min_lr)

    model = GPT(len(chars), block_size, n_layer, n_head, n_embd)
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=learning_rate, betas=(0.9, 0.99))
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16")

    seconds = cpu_seconds = 0.0
    for it in range(args.iters):
        started, cpu_started = time.perf_counter(), time.process_time()
        for group in optimizer.param_groups:
            group["lr"] = get_lr(it)
        x, y = get_batch(train_data)
        with autocast:
            _, loss = model(x, y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        seconds += time.perf_counter() - started
        cpu_seconds += time.process_time() - cpu_started

    model.eval()
    with torch.no_grad():
        estimate = torch.stack([model(*get_batch(val_data))[1] for _ in range(20)]).mean().item()
        inputs, targets = val_data[:-1], val_data[1:]
        full = len(inputs) // block_size * block_size
        total = 0.0
        blocks_in, blocks_out = inputs[:full].view(-1, block_size), targets[:full].view(-1, block_size)
        for start in range(0, len(blocks_in), 64):
            logits, _ = model(blocks_in[start : start + 64])
            total += F.cross_entropy(logits.flatten(0, 1), blocks_out[start : start + 64].flatten(), reduction="sum")
        logits, _ = model(inputs[full:].unsqueeze(0))
        total += F.cross_entropy(logits.flatten(0, 1), targets[full:], reduction="sum")
        val_loss = float(total) / len(targets)
    non_embedding = sum(p.numel() for p in model.parameters()) - model.wpe.weight.numel()
    print(
        json.dumps(
            {
                "tool": "nanogpt_reference",
                "precision": args.precision,
                "iters": args.iters,
                "tokens_per_second": round(args.iters * batch_size * block_size / seconds, 1),
                "train_seconds": round(seconds, 2),
                "tokens_per_cpu_second": round(args.iters * batch_size * block_size / cpu_seconds, 1),
                "val_loss": round(val_loss, 4),
                "val_loss_estimate_20_batches": round(estimate, 4),
                "non_embedding_parameters": non_embedding,
                "threads": torch.get_num_threads(),
            }
        )
    )


if __name__ == "__main__":
    main()
