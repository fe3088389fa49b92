"""Paired comparison of evaluated configurations (`lpq compare`, the `paired` table): exact McNemar p against
hand-derived values and SciPy's binomial test, discordant counts, refusal of runs scored on different images."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from lpq.cli import main
from lpq.pipeline import tables
from lpq.pipeline.compare import Predictions, compare, load_predictions, mcnemar_exact, paired


def _write_preds(d: Path, labels: list[int], top1: list[int], ids: list[str] | None = None) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    ids = ids or [f"img/{i}" for i in range(len(labels))]
    rows = ["id,label,top1"] + [f"{i},{y},{p}" for i, y, p in zip(ids, labels, top1)]
    (d / "predictions.csv").write_text("\n".join(rows) + "\n")
    return d


@pytest.mark.parametrize("only_a,only_b,p", [
    (0, 0, 1.0),
    (2, 1, 1.0),                       # 2 * (1 + 3) / 8 = 1
    (10, 2, 2 * (1 + 12 + 66) / 4096),  # 0.03857...
    (0, 5, 2 / 32),
    (10, 0, 2 / 1024),
    (3, 3, 1.0),
])
def test_mcnemar_exact_hand_values(only_a, only_b, p):
    assert mcnemar_exact(only_a, only_b) == pytest.approx(p, rel=1e-15)
    assert mcnemar_exact(only_b, only_a) == mcnemar_exact(only_a, only_b)


@pytest.mark.parametrize("only_a,only_b", [(1, 7), (9, 22), (10, 22), (27, 9), (40, 61), (150, 210), (500, 430)])
def test_mcnemar_exact_matches_scipy_binomtest(only_a, only_b):
    stats = pytest.importorskip("scipy.stats")
    ref = stats.binomtest(min(only_a, only_b), only_a + only_b, 0.5).pvalue
    assert mcnemar_exact(only_a, only_b) == pytest.approx(ref, rel=1e-9, abs=1e-300)


def test_mcnemar_exact_rejects_negative_counts():
    with pytest.raises(ValueError, match="discordant counts must be >= 0"):
        mcnemar_exact(-1, 3)


def test_paired_counts_discordant_images(tmp_path):
    labels = [0, 1, 2, 3, 4, 5]
    a = load_predictions(_write_preds(tmp_path / "a", labels, [0, 1, 2, 9, 9, 5]), "A")  # right: 0 1 2 5
    b = load_predictions(_write_preds(tmp_path / "b", labels, [0, 9, 9, 3, 9, 5]), "B")  # right: 0 3 5
    r = paired(a, b)
    assert (r["images"], r["only_a"], r["only_b"]) == (6, 2, 1)
    assert r["top1_a"] == pytest.approx(400 / 6, abs=1e-4) and r["top1_b"] == 50.0
    assert r["p_mcnemar"] == 1.0
    rows = compare([a, b, a], reference_only=True)
    assert [(x["a"], x["b"]) for x in rows] == [("A", "B"), ("A", "A")] and rows[1]["only_a"] == rows[1]["only_b"] == 0
    assert len(compare([a, b, a])) == 3


def test_paired_refuses_different_images_or_labels(tmp_path):
    a = load_predictions(_write_preds(tmp_path / "a", [0, 1], [0, 1]), "A")
    with pytest.raises(ValueError, match="different image sets \\(2 vs 3 images\\)"):
        paired(a, load_predictions(_write_preds(tmp_path / "b", [0, 1, 2], [0, 1, 2]), "B"))
    with pytest.raises(ValueError, match="row 2 is img/1 vs other"):
        paired(a, load_predictions(_write_preds(tmp_path / "c", [0, 1], [0, 1], ["img/0", "other"]), "C"))
    with pytest.raises(ValueError, match="disagree on the label of img/1 \\(1 vs 7\\).*data.labels"):
        paired(a, load_predictions(_write_preds(tmp_path / "d", [0, 7], [0, 1]), "D"))


def test_load_predictions_errors(tmp_path):
    with pytest.raises(ValueError, match="has no predictions.csv"):
        load_predictions(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("image,label,pred\nx,1,1\n")
    with pytest.raises(ValueError, match="expected the header id,label,top1"):
        load_predictions(bad)
    bad.write_text("id,label,top1\n")
    with pytest.raises(ValueError, match="lists no images"):
        load_predictions(bad)
    bad.write_text("id,label,top1\nx,one,1\n")
    with pytest.raises(ValueError, match="malformed row"):
        load_predictions(bad)


def test_lpq_compare_command(tmp_path, capsys):
    labels = list(range(10)) * 3
    a = _write_preds(tmp_path / "lp", labels, labels)                                 # 30 right
    b = _write_preds(tmp_path / "int", labels, [y if i < 18 else -1 for i, y in enumerate(labels)])  # 18 right
    out = tmp_path / "cmp.json"
    assert main(["compare", str(a), str(b / "predictions.csv"), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| A | B | images |" in text and "| 30 | 100.00 | 60.00 | 12 | 0 |" in text
    rows = json.loads(out.read_text())
    assert rows[0]["only_a"] == 12 and rows[0]["p_mcnemar"] == pytest.approx(2 / 2**12)
    assert main(["compare", str(a)]) == 2
    assert "needs at least two runs" in capsys.readouterr().err
    assert main(["compare", str(a), str(tmp_path / "missing")]) == 2
    assert "has no predictions.csv" in capsys.readouterr().err


def test_paired_table_lp_against_searched_baselines_and_uniform(fake_results):
    labels = [i % 10 for i in range(40)]
    right = lambda k: [y if i < k else (y + 1) % 10 for i, y in enumerate(labels)]  # first k images right
    _write_preds(fake_results / "eval/m1/lpq/lp/w4a4/s0", labels, right(36))
    _write_preds(fake_results / "eval/m1/lpq/int/w4a4/s0", labels, right(30))
    _write_preds(fake_results / "eval/m1/none/lp/w4a4/s0", labels, right(38))
    rows = tables.paired_rows(fake_results)
    assert [(r["model"], r["seed"], r["a"], r["b"]) for r in rows] == [("m1", "s0", "lp lpq", "int lpq"),
                                                                      ("m1", "s0", "lp lpq", "lp uniform")]
    assert (rows[0]["only_a"], rows[0]["only_b"], rows[0]["p_mcnemar"]) == (6, 0, round(2 / 64, 4))
    assert (rows[1]["only_a"], rows[1]["only_b"], rows[1]["top1_b"]) == (0, 2, 95.0)
    tables.build(fake_results, "ant")
    assert (fake_results / "tables" / "paired.md").read_text().startswith("| model | budget | seed | a | b |")
