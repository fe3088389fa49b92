"""`lpq compare RUN RUN [RUN ...]`: paired comparison of evaluated configurations on the same validation images.

A RUN is an `lpq evaluate` output directory or its `predictions.csv`. For every pair the same images must have been
scored (same ids, same order, same labels). Reported per pair: top-1 of both, the discordant counts (images only
the first / only the second gets right) and the two-sided exact McNemar p-value (binomial test of the discordant
pairs against ½), which says whether a top-1 gap of a few images is more than chance.

    lpq compare runs/lp/eval runs/int/eval [--json out.json]
"""
from __future__ import annotations

import argparse
import csv
import itertools
import sys
from dataclasses import dataclass
from fractions import Fraction
from math import comb
from pathlib import Path

from . import atomic

PREDICTIONS = "predictions.csv"
PREDICTION_COLUMNS = ["id", "label", "top1"]  # written by `lpq evaluate`


@dataclass(frozen=True)
class Predictions:
    """One evaluated configuration: image ids, labels and top-1 predictions in evaluation order."""

    name: str
    ids: tuple[str, ...]
    labels: tuple[int, ...]
    top1: tuple[int, ...]

    @property
    def correct(self) -> tuple[bool, ...]:
        return tuple(p == y for p, y in zip(self.top1, self.labels))

    @property
    def accuracy(self) -> float:
        return 100.0 * sum(self.correct) / len(self.ids)


def load_predictions(run: str | Path, name: str | None = None) -> Predictions:
    """Read RUN (an evaluate out_dir or a predictions.csv)."""
    path = Path(run)
    if path.is_dir():
        path = path / PREDICTIONS
    if not path.is_file():
        raise ValueError(f"{run} has no {PREDICTIONS}: give an `lpq evaluate` out_dir (it writes {PREDICTIONS})")
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows or rows[0] != PREDICTION_COLUMNS:
        raise ValueError(f"{path}: expected the header {','.join(PREDICTION_COLUMNS)}, got {rows[0] if rows else 'an empty file'}")
    body = rows[1:]
    if not body:
        raise ValueError(f"{path} lists no images")
    try:
        labels = tuple(int(r[1]) for r in body)
        top1 = tuple(int(r[2]) for r in body)
    except (IndexError, ValueError) as err:
        raise ValueError(f"{path}: malformed row ({err})") from None
    return Predictions(name or str(run), tuple(r[0] for r in body), labels, top1)


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value: P(a split of the n = only_a + only_b discordant images at least this uneven)
    under Binomial(n, ½), computed with exact integers; 1.0 when there is no discordant image."""
    if only_a < 0 or only_b < 0:
        raise ValueError(f"discordant counts must be >= 0, got {only_a} and {only_b}")
    n = only_a + only_b
    if n == 0:
        return 1.0
    tail = sum(comb(n, i) for i in range(min(only_a, only_b) + 1))
    return float(min(Fraction(1), Fraction(2 * tail, 2**n)))


def paired(a: Predictions, b: Predictions) -> dict:
    """Top-1 of both, discordant counts and exact McNemar p; refuses runs scored on different images or labels."""
    if a.ids != b.ids:
        if len(a.ids) != len(b.ids):
            raise ValueError(f"{a.name} and {b.name} scored different image sets ({len(a.ids)} vs {len(b.ids)} images)")
        i = next(k for k, (x, y) in enumerate(zip(a.ids, b.ids)) if x != y)
        raise ValueError(f"{a.name} and {b.name} scored different images: row {i + 1} is {a.ids[i]} vs {b.ids[i]}")
    if a.labels != b.labels:
        i = next(k for k, (x, y) in enumerate(zip(a.labels, b.labels)) if x != y)
        raise ValueError(f"{a.name} and {b.name} disagree on the label of {a.ids[i]} ({a.labels[i]} vs {b.labels[i]}): "
                         "were they evaluated with the same data.labels?")
    ca, cb = a.correct, b.correct
    only_a = sum(x and not y for x, y in zip(ca, cb))
    only_b = sum(y and not x for x, y in zip(ca, cb))
    return {"a": a.name, "b": b.name, "images": len(a.ids), "top1_a": round(a.accuracy, 4),
            "top1_b": round(b.accuracy, 4), "only_a": only_a, "only_b": only_b,
            "p_mcnemar": mcnemar_exact(only_a, only_b)}


def compare(runs: list[Predictions], reference_only: bool = False) -> list[dict]:
    """Pairwise rows: every pair, or the first run against each other one."""
    pairs = [(runs[0], r) for r in runs[1:]] if reference_only else list(itertools.combinations(runs, 2))
    return [paired(a, b) for a, b in pairs]


def to_markdown(rows: list[dict]) -> str:
    out = ["| A | B | images | top-1 A | top-1 B | only A right | only B right | exact McNemar p |",
           "|---|---|---|---|---|---|---|---|"]
    out += [f"| {r['a']} | {r['b']} | {r['images']} | {r['top1_a']:.2f} | {r['top1_b']:.2f} | {r['only_a']} | "
            f"{r['only_b']} | {r['p_mcnemar']:.4g} |" for r in rows]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="lpq compare", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="lpq evaluate out_dirs (or their predictions.csv)")
    ap.add_argument("--reference", action="store_true", help="compare the first run with each other one only")
    ap.add_argument("--json", type=Path, help="also write the rows to this JSON file (atomically)")
    a = ap.parse_args(argv)
    try:
        if len(a.runs) < 2:
            raise ValueError(f"lpq compare needs at least two runs, got {len(a.runs)}")
        rows = compare([load_predictions(r) for r in a.runs], a.reference)
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(to_markdown(rows), end="")
    if a.json:
        atomic.write_json(a.json, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
