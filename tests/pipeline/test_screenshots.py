"""The docs' screenshot helper: which runs the MLflow comparison page shows, and its URL (the rendering itself
needs chromium and is run by hand: python -m lpq.pipeline.screenshots)."""
from __future__ import annotations

import json
import urllib.parse

from lpq.pipeline.screenshots import compare_url, evaluate_runs


def _run(rid, **wc):
    return {"info": {"run_id": rid}, "data": {"params": [{"key": f"wc.{k}", "value": v} for k, v in wc.items()]}}


def test_evaluate_runs_picks_searched_runs_of_the_first_mixed_budget_and_fp32():
    runs = [_run("a", method="lpq", fmt="lp", wa="w4a4-mix", seed="0"),
            _run("b", method="lpq", fmt="int", wa="w4a4-mix", seed="0"),
            _run("c", method="lpq", fmt="lp", wa="w4a4-mix", seed="1"),
            _run("d", method="none", fmt="lp", wa="w4a4", seed="0"),
            _run("e", method="lpq", fmt="fp", wa="w4a8-mix", seed="0"),
            _run("f", method="none", fmt="fp32", wa="w32a32", seed="0"),
            {"info": {"run_id": "p"}, "data": {}}]
    assert evaluate_runs(runs, None) == ("w4a4-mix", ["b", "a", "f"])
    assert evaluate_runs(runs, "w4a8-mix") == ("w4a8-mix", ["e", "f"])


def test_compare_url_is_mlflows_compare_route():
    url = compare_url("http://127.0.0.1:5000", "3", ["x", "y"])
    route, query = url.split("#", 1)[1].split("?", 1)
    assert route == "/compare-runs"
    q = urllib.parse.parse_qs(query)
    assert json.loads(q["runs"][0]) == ["x", "y"] and json.loads(q["experiments"][0]) == ["3"]
