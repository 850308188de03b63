"""Precision and recall of the gibberish score on the labelled samples in this folder.

The samples are split in two. Tuning: what the score's weights and word list were adjusted on
(gibberish from random models of seeds 0-7, and the written normal texts of normal.jsonl).
Held out: what was never looked at while tuning (gibberish of seeds 8-15, and the standard-library
texts of normal_stdlib.jsonl); its figures are the honest ones, and docs/runbook.md quotes them.

Usage:  .venv/bin/python -m tests.gibberish_samples.evaluate [--threshold 0.5] [--split held_out]
            [--show-errors]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from llm_upkeep.runbook.gibberish import DEFAULT_THRESHOLD, score_gibberish  # noqa: E402

HERE = Path(__file__).resolve().parent
TUNING_SEEDS = frozenset(range(8))  # random models whose output the score was tuned on
HELD_OUT_FILES = frozenset({"normal_stdlib.jsonl"})  # normal texts collected after tuning
SPLITS = ("tuning", "held_out")


def split_of(row: dict, file: str) -> str:
    """'tuning' or 'held_out' (see the module docstring)."""
    if row["label"] == "gibberish":
        seed = int(row["source"].split("seed=")[1].split()[0])
        return "tuning" if seed in TUNING_SEEDS else "held_out"
    return "held_out" if file in HELD_OUT_FILES else "tuning"


def load_samples(split: str | None = None) -> list[dict]:
    """Every labelled sample (or one split's), each as in its file."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    rows: list[dict] = []
    for path in sorted(HERE.glob("*.jsonl")):
        with open(path, encoding="utf-8") as f:
            file_rows = [json.loads(line) for line in f if line.strip()]
        rows += [r for r in file_rows if split is None or split_of(r, path.name) == split]
    return rows


def evaluate(threshold: float = DEFAULT_THRESHOLD, split: str | None = None) -> dict:
    """Counts, precision, recall (gibberish is the positive class) and the misclassified samples."""
    tp = fp = fn = tn = 0
    errors: list[dict] = []
    by_kind: dict[str, list[int]] = {}
    for r in load_samples(split):
        s = score_gibberish(r["text"])
        predicted = s.is_gibberish(threshold)
        actual = r["label"] == "gibberish"
        tp += predicted and actual
        fp += predicted and not actual
        fn += actual and not predicted
        tn += not actual and not predicted
        k = by_kind.setdefault(f"{r['label']}/{r['kind']}", [0, 0])
        k[0] += predicted == actual
        k[1] += 1
        if predicted != actual:
            errors.append({"label": r["label"], "kind": r["kind"], "score": s.explain(), "text": r["text"]})
    return {
        "threshold": threshold, "split": split or "all", "samples": tp + fp + fn + tn, "gibberish": tp + fn, "normal": fp + tn,
        "tp": tp, "fp": fp, "fn": fn, "tn": tn,
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "accuracy_by_kind": {k: f"{v[0]}/{v[1]}" for k, v in sorted(by_kind.items())},
        "errors": errors,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    p.add_argument("--split", choices=SPLITS, default=None, help="one split only (default: all samples)")
    p.add_argument("--show-errors", action="store_true")
    args = p.parse_args(argv)
    res = evaluate(args.threshold, args.split)
    print(
        f"{res['split']}: {res['samples']} samples ({res['gibberish']} gibberish, {res['normal']} normal), threshold "
        f"{res['threshold']:g}: precision {res['precision']:.3f}, recall {res['recall']:.3f} "
        f"(tp {res['tp']}, fp {res['fp']}, fn {res['fn']}, tn {res['tn']})"
    )
    for k, v in res["accuracy_by_kind"].items():
        print(f"  {k:<28} {v}")
    if args.show_errors:
        for e in res["errors"]:
            print(f"- {e['label']}/{e['kind']}: {e['score']}\n    {e['text'][:160]!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
