"""Text classification accuracy with the default config, from the CLI alone, on the data README's splits.

For each dataset this script writes a CSV with the columns `label`, `text` and `split` (train/test) following the
README's split rule, then runs what a user would, with no hand-edited config (the same steps as `quality.py`):

    deepwright init  --data <data-dir>/text_quality/NAME/NAME.csv --target label -o <that folder>/config.yaml
    deepwright train --config <that config> --data <that csv> --output <that folder>/runs --quiet

`init` sees the free-text column and the `split` column: it picks the text feature's defaults, splits by the column
and holds out 10% of the training rows as validation (for early stopping). Test accuracy comes from the run's
`metrics.json`. Datasets and split rules (`../shared/data/README.md`):

- sms_spam: 5,574 short messages (13.4% spam), stratified on the label, `test_size=0.2, random_state=42`.
  Goal ≥ 0.985. References on the same split (README): TF-IDF + LinearSVC 0.988, counts + MultinomialNB 0.985,
  majority class 0.866.
- movie_review_polarity: 2,000 long reviews; fold 10 (files cv900–cv999, 200 reviews) is the test set, the other
  1,800 train. Goal ≥ 0.85. References: TF-IDF (1–2-grams) + LogisticRegression 0.910 on fold 10; binary counts +
  MultinomialNB 0.819 (10-fold mean).

A dataset whose files under ../shared/data are absent is skipped with a message. `--limit N` keeps N rows of each
dataset, for a quick check that the script runs (its figures are then no measurement).

    .venv/bin/python benchmarks/text_quality.py [--data-dir /tmp/deepwright-bench] [--only sms_spam]
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pandas as pd

from _common import SHARED_DATA_DIR, base_parser, emit, environment
from quality import Dataset, evaluate_all

SMS = "sms_spam/SMSSpamCollection"
REVIEWS = SHARED_DATA_DIR / "movie_review_polarity" / "txt_sentoken"
REVIEW_FOLD = re.compile(r"cv(\d{3})_")


def load_sms() -> pd.DataFrame:
    """The SMS Spam Collection: tab-separated label and message, no header, stray quotes kept (QUOTE_NONE)."""
    return pd.read_csv(SHARED_DATA_DIR / SMS, sep="\t", header=None, names=["label", "text"], quoting=3)


def load_reviews() -> pd.DataFrame:
    """The polarity reviews: one row per file of txt_sentoken/{neg,pos}/, split 'test' for folds cv900–cv999."""
    rows = []
    for label in ("neg", "pos"):
        for path in sorted((REVIEWS / label).glob("cv*.txt")):
            fold = int(REVIEW_FOLD.match(path.name).group(1))
            rows.append((label, path.read_text(encoding="utf-8"), "test" if fold >= 900 else "train"))
    return pd.DataFrame(rows, columns=["label", "text", "split"])


def limited(load: Callable[[], pd.DataFrame], limit: int | None) -> Callable[[], pd.DataFrame]:
    """`load`, keeping `limit` rows spread over the table (every row when None)."""
    if limit is None:
        return load
    return lambda: (frame := load()).iloc[:: max(1, len(frame) // limit)].reset_index(drop=True)


def datasets(limit: int | None) -> list[Dataset]:
    """The two text datasets with their goals and references."""
    first_review = "movie_review_polarity/txt_sentoken/neg/cv000_29416.txt"
    return [
        Dataset(
            "sms_spam",
            "label",
            limited(load_sms, limit),
            files=(SMS,),
            goal=("accuracy", ">=", 0.985),
            references={
                "tfidf_linear_svc (data README)": {"accuracy": 0.988},
                "counts_multinomial_nb (data README)": {"accuracy": 0.985},
                "majority (data README)": {"accuracy": 0.866},
            },
        ),
        Dataset(
            "movie_review_polarity",
            "label",
            limited(load_reviews, limit),
            files=(first_review,),
            has_split=True,
            goal=("accuracy", ">=", 0.85),
            references={
                "tfidf_1_2_grams_logreg (data README)": {"accuracy": 0.910},
                "binary_counts_nb_10_fold (data README)": {"accuracy": 0.819},
            },
        ),
    ]


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0], repeats=None)
    parser.add_argument("--only", nargs="+", choices=["sms_spam", "movie_review_polarity"], help="these datasets")
    parser.add_argument("--limit", type=int, help="keep this many rows of each dataset (a quick check only)")
    args = parser.parse_args()
    chosen = [dataset for dataset in datasets(args.limit) if not args.only or dataset.name in args.only]
    rows, skipped = evaluate_all(chosen, args.data_dir / "text_quality", args.wait_quiet)
    emit(
        {
            "benchmark": "text_quality",
            "compares": "deepwright init + train (CLI, inferred config) test accuracy vs ../shared/data/README.md "
            "reference models on the same split",
            "limit": args.limit,
            "results": rows,
            "skipped": skipped,
            "environment": environment(),
        }
    )


if __name__ == "__main__":
    main()
