"""`lpq search` end to end, in process, on the embedded digits_cnn (LPQ §4.3, §5, §9-§12):
the run files of §11, the budget, best fitness <= the seeds', determinism, resume after a kill,
rejection of an infeasible budget before any work, search=none, and every search.format."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from lpq.cli import main
from lpq.formats import parse
from lpq.quant.qconfig import QConfig
from lpq.search.ga import LPQSearch

CNN_UNITS = ["stem.0", "layer1.conv1", "layer1.conv2", "layer2.conv1", "layer2.conv2", "layer2.shortcut.0", "fc"]
CAL = ["calib.num_samples=64", "calib.batch=32", "calib.subsample=4096"]
LOG_HEADER = ["generation", "best_fitness", "mean_fitness", "avg_w_bits", "avg_a_bits", "evaluations", "seconds"]
# the run the determinism and resume tests reproduce: 4 generations, no early stop
LONG = ["search.population=4", "search.generations=4", "search.patience=10", "budget.w_bits=4.5", "budget.a_bits=4"]
SHORT = ["search.population=4", "search.generations=2", "budget.w_bits=4.5", "budget.a_bits=3.5"]
FAMILY_PREFIX = {"lp": ("lp<",), "int": ("int<",), "fp": ("fp<",), "posit": ("posit<",), "af": ("af<",),
                 "ant": ("int<", "flint<", "pot<")}



def signed(spec: str) -> str:
    """The signed family name of a spec (quant.unsigned_acts=auto, the default, gives ReLU inputs ulp, uint, ...)."""
    return spec[1:] if spec.startswith("u") else spec

def _read(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def _log(out: Path) -> tuple[list[str], list[list[str]]]:
    with open(out / "search_log.csv", newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def _log_without_seconds(out: Path) -> list[list[str]]:
    header, rows = _log(out)
    k = header.index("seconds")
    return [r[:k] + r[k + 1:] for r in rows]


def _budget_bits(out: Path, exclude=()) -> tuple[float, float]:
    """b̄_w, b̄_a of the written qconfig, from the P_l / A_l of search.json."""
    layers = _read(out / "qconfig.json")["layers"]
    PA = _read(out / "search.json")["layers"]
    wn = wd = an = ad = 0.0
    for name, e in layers.items():
        if name in exclude:
            continue
        wn += PA[name]["P"] * parse(e["w"]).bits
        wd += PA[name]["P"]
        an += PA[name]["A"] * parse(e["a"]).bits
        ad += PA[name]["A"]
    return wn / wd, an / ad


@pytest.fixture(scope="module")
def search(cnn_ckpt, tmp_path_factory):
    """Run `lpq search` on digits_cnn once per name (cached): name -> out_dir."""
    cache: dict[str, Path] = {}

    def run(name: str, *extra: str, out: Path | None = None, expect: int = 0) -> Path:
        if name not in cache:
            out = out or tmp_path_factory.mktemp(name)
            rc = main(["search", "model=digits_cnn", f"model.checkpoint={cnn_ckpt}", f"out_dir={out}", *CAL, *extra])
            assert rc == expect, name
            cache[name] = out
        return cache[name]

    return run


# ---- the run files (LPQ §11) and the search result ------------------------------------------------------

def test_run_files_match_spec(search):
    out = search("long", *LONG)
    q = _read(out / "qconfig.json")
    assert q["schema_version"] == 1
    assert list(q["layers"]) == CNN_UNITS  # execution order, every quantized layer
    for name, e in q["layers"].items():
        assert set(e) == {"w", "a"}, name
        for side in ("w", "a"):
            assert "*" not in e[side] and signed(e[side]).startswith("lp<")  # ReLU inputs: ulp (unsigned_acts)
            assert signed(parse(e[side]).spec).startswith("lp<")
    qc = QConfig.load(out / "qconfig.json")
    assert set(qc.quantizers()) == set(CNN_UNITS)

    header, rows = _log(out)
    assert header == LOG_HEADER
    assert [int(r[0]) for r in rows] == [0, 1, 2, 3, 4]
    best = [float(r[1]) for r in rows]
    assert best == sorted(best, reverse=True)  # best so far: never increases
    evals = [int(r[5]) for r in rows]
    assert 1 <= evals[0] <= 4 and evals == sorted(evals) and evals[-1] <= 4 + 4 * 3
    for r in rows:
        assert float(r[3]) <= 4.5 + 1e-12 and float(r[4]) <= 4.0 + 1e-12  # bits of each generation's best
        assert float(r[2]) >= float(r[1])  # mean of the population >= best so far
        assert float(r[6]) >= 0

    s = _read(out / "search.json")
    for key in ("model", "family", "targets", "settings", "seed", "calib_seed", "layers", "fitness", "fitness_terms",
                "fitness_fp_reference", "fitness_minus_fp", "avg_w_bits_searched", "avg_a_bits_searched", "avg_w_bits",
                "avg_a_bits", "compression", "weights_mb", "evaluations", "wall_s"):
        assert key in s, key
    assert s["family"] == "lp" and s["model"] == "digits_cnn"
    assert s["targets"] == {"w_bits": 4.5, "a_bits": 4.0, "mode": "repair"}
    assert set(s["fitness_terms"]) >= {"global", "local"}
    assert s["fitness"] == pytest.approx(s["fitness_terms"]["global"] + s["fitness_terms"]["local"], rel=1e-12)
    assert s["fitness_minus_fp"] == pytest.approx(s["fitness"] - s["fitness_fp_reference"], rel=1e-9)
    assert s["fitness"] == best[-1]
    assert s["evaluations"] == evals[-1]
    assert set(s["layers"]) == set(CNN_UNITS) and s["layers"]["fc"] == {"P": 320, "A": 32}
    w, a = _budget_bits(out)
    assert w <= 4.5 and a <= 4.0
    assert (s["avg_w_bits"], s["avg_a_bits"]) == pytest.approx((w, a), rel=1e-12)  # nothing pinned: all = searched
    assert (s["avg_w_bits_searched"], s["avg_a_bits_searched"]) == pytest.approx((w, a), rel=1e-12)
    assert s["compression"] == pytest.approx(32.0 / w, rel=1e-12)
    qbits = sum(s["layers"][n]["P"] * parse(e["w"]).bits for n, e in q["layers"].items())
    assert s["weights_mb"] >= qbits / 8 / 2**20
    assert (out / ".ckpt" / "search.json").is_file()


def test_best_fitness_is_best_ever_evaluated(search):
    """The result is the best individual ever evaluated, so it is <= both seeds (I_med, I_mse)
    and <= uniform calibrated PTQ at the budget width (search=none = the I_mse seed)."""
    out = search("long", *LONG)
    s = _read(out / "search.json")
    ckpt = _read(out / ".ckpt" / "search.json")
    memo = [r["fitness"] for r in ckpt["memo"].values()]
    assert len(memo) == s["evaluations"]
    assert s["fitness"] == min(memo)
    seeds = memo[:2]  # generation 0 is evaluated first, I_med and I_mse in front
    assert s["fitness"] <= min(seeds)
    uniform = search("none_w45", "search=none", "budget.w_bits=4.5", "budget.a_bits=4")
    assert s["fitness"] <= _read(uniform / "search.json")["fitness"]
    assert _read(uniform / "search.json")["fitness"] in memo  # the I_mse seed was evaluated


def test_searched_qconfig_loads_in_evaluate(search, cnn_ckpt, tmp_path):
    out = search("long", *LONG)
    ev = tmp_path / "eval"
    rc = main(["evaluate", "model=digits_cnn", f"model.checkpoint={cnn_ckpt}", f"quant.config={out / 'qconfig.json'}",
               "eval.max_samples=64", f"out_dir={ev}"])
    assert rc == 0
    m = _read(ev / "metrics.json")
    assert m["qconfig"] == str(out / "qconfig.json") and m["quantized_layers"] == 7
    s = _read(out / "search.json")
    assert (m["avg_w_bits"], m["avg_a_bits"]) == pytest.approx((s["avg_w_bits"], s["avg_a_bits"]), rel=1e-12)
    assert _read(ev / "qconfig.json")["layers"] == _read(out / "qconfig.json")["layers"]  # applied as written


# ---- determinism and resume (LPQ §10) --------------------------------------------------------------------

def _same_result(a: Path, b: Path) -> None:
    assert (a / "qconfig.json").read_bytes() == (b / "qconfig.json").read_bytes()
    assert _log_without_seconds(a) == _log_without_seconds(b)
    sa, sb = _read(a / "search.json"), _read(b / "search.json")
    for key in ("fitness", "fitness_terms", "avg_w_bits", "avg_a_bits", "compression", "evaluations", "generations_run"):
        assert sa[key] == sb[key], key


def test_two_runs_with_one_seed_are_identical(search):
    _same_result(search("long", *LONG), search("long_again", *LONG))


def test_batched_individuals_give_the_same_search(search):
    """search.individuals_per_pass=4 (LPQ §8.5): on CPU the same fitness values, hence the same GA
    trajectory and result as one individual at a time."""
    _same_result(search("long", *LONG), search("long_batched", *LONG, "search.individuals_per_pass=4"))
    assert _read(search("long_batched", *LONG, "search.individuals_per_pass=4") / "search.json")[
        "fitness_settings"]["individuals_per_pass"] == 4


def test_different_seed_changes_the_search(search):
    a, b = search("long", *LONG), search("long_seed1", *LONG, "seed=1")
    assert _log_without_seconds(a)[0] != _log_without_seconds(b)[0] or \
        (a / "qconfig.json").read_bytes() != (b / "qconfig.json").read_bytes()


def test_resume_after_stop_at_generation_2(search, cnn_ckpt, tmp_path):
    """generations=2, then the same run with generations=4 and search.resume=true, equals an
    uninterrupted generations=4 run."""
    out = tmp_path / "resumed"
    base = ["search", "model=digits_cnn", f"model.checkpoint={cnn_ckpt}", f"out_dir={out}", *CAL, *LONG]
    assert main([*base, "search.generations=2"]) == 0
    _, rows = _log(out)
    assert len(rows) == 3
    assert main([*base, "search.resume=true"]) == 0
    _same_result(search("long", *LONG), out)
    assert _read(out / ".ckpt" / "search.json")["generation"] == 4


def test_resume_after_kill_at_generation_2(search, cnn_ckpt, tmp_path, monkeypatch):
    """A run killed right after generation 2's checkpoint, resumed, equals an uninterrupted run."""
    out = tmp_path / "killed"
    args = ["search", "model=digits_cnn", f"model.checkpoint={cnn_ckpt}", f"out_dir={out}", *CAL, *LONG]
    save = LPQSearch.save_checkpoint

    def save_then_die(self, path, digest):
        save(self, path, digest)
        if self.generation == 2:
            raise KeyboardInterrupt("killed after generation 2")

    monkeypatch.setattr(LPQSearch, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        main(args)
    monkeypatch.undo()
    assert not (out / "qconfig.json").exists()
    assert _read(out / ".ckpt" / "search.json")["generation"] == 2
    assert main([*args, "search.resume=true"]) == 0
    _same_result(search("long", *LONG), out)


def test_resume_with_a_different_config_is_an_error(search, cnn_ckpt, tmp_path, capsys):
    out = tmp_path / "mismatch"
    base = ["search", "model=digits_cnn", f"model.checkpoint={cnn_ckpt}", f"out_dir={out}", *CAL, *SHORT]
    assert main([*base, "search.generations=1"]) == 0
    capsys.readouterr()
    assert main([*base, "budget.w_bits=4", "search.resume=true"]) == 2
    err = capsys.readouterr().err
    assert "checkpoint" in err and "search.resume=false" in err


def test_resume_mismatch_names_what_differs(search, cnn_ckpt, tmp_path, capsys):
    """LPQ §10: 'a mismatch is an error naming what differs'."""
    out = tmp_path / "mismatch_named"
    base = ["search", "model=digits_cnn", f"model.checkpoint={cnn_ckpt}", f"out_dir={out}", *CAL, *SHORT]
    assert main([*base, "search.generations=1"]) == 0
    capsys.readouterr()
    assert main([*base, "budget.w_bits=4", "search.resume=true"]) == 2
    assert "w_bits" in capsys.readouterr().err


# ---- rejected before any work --------------------------------------------------------------------------

@pytest.mark.parametrize("extra,needle", [
    (["budget.w_bits=1"], "w_bits"),
    (["budget.a_bits=1.5", "search.bits=[2,4,8]"], "a_bits"),
    (["search.format=af", "budget.a_bits=2.5"], "a_bits"),  # AdaptivFloat needs n >= 3
])
def test_infeasible_budget_rejected_before_any_work(cnn_ckpt, tmp_path, monkeypatch, capsys, extra, needle):
    import lpq.runs.search as cli_search

    def no_work(*a, **k):
        raise AssertionError("the model was built before the budget was checked")

    monkeypatch.setattr(cli_search, "build_quant_model", no_work)
    out = tmp_path / "infeasible"
    rc = main(["search", "model=digits_cnn", f"model.checkpoint={cnn_ckpt}", f"out_dir={out}", *CAL, *extra])
    assert rc == 2
    err = capsys.readouterr().err
    assert "infeasible" in err and needle in err and "search.bits" in err
    assert not (out / "qconfig.json").exists() and not (out / ".ckpt").exists()


def test_bad_budget_mode_rejected(cnn_ckpt, tmp_path, capsys):
    rc = main(["search", "model=digits_cnn", f"model.checkpoint={cnn_ckpt}", f"out_dir={tmp_path}", *CAL,
               "budget.mode=strict"])
    assert rc == 2 and "budget.mode" in capsys.readouterr().err


# ---- search=none and every format -----------------------------------------------------------------------

def test_search_none_writes_the_uniform_config(search, cnn_ckpt, tmp_path):
    out = search("none", "search=none")  # budget 4/4
    q = _read(out / "qconfig.json")
    assert list(q["layers"]) == CNN_UNITS
    for e in q["layers"].values():
        assert e["w"].startswith("lp<4,") and signed(e["a"]).startswith("lp<4,")
    header, rows = _log(out)
    assert header == LOG_HEADER and len(rows) == 1 and rows[0][0] == "0"
    s = _read(out / "search.json")
    assert s["search"] == "none" and s["evaluations"] == 1
    assert (s["avg_w_bits"], s["avg_a_bits"], s["compression"]) == (4.0, 4.0, 8.0)
    # the I_mse seed is LP-FORMAT §7's `lp<4,*,*,*>` calibration: lpq evaluate resolves the same strings
    ev = tmp_path / "uniform"
    assert main(["evaluate", "model=digits_cnn", f"model.checkpoint={cnn_ckpt}", "quant.w_format=lp<4,*,*,*>",
                 "quant.a_format=lp<4,*,*,*>", "eval.max_samples=32", f"out_dir={ev}", *CAL]) == 0
    assert _read(ev / "qconfig.json")["layers"] == q["layers"]


@pytest.mark.parametrize("family", ["lp", "int", "fp", "posit", "af", "ant"])
def test_every_format_runs_end_to_end(search, family):
    """population 4, generations 2, fractional targets; first/last pinned for fp, posit, ant."""
    pin = family in ("fp", "posit", "ant")
    out = search(f"fmt_{family}", *SHORT, f"search.format={family}", f"search.pin_first_last={str(pin).lower()}")
    q = _read(out / "qconfig.json")
    assert list(q["layers"]) == CNN_UNITS
    for name, e in q["layers"].items():
        for side in ("w", "a"):
            assert signed(e[side]).startswith(FAMILY_PREFIX[family]), e[side]
            n = parse(e[side]).bits
            if pin and name in ("stem.0", "fc"):
                assert n == 8, (name, e)
            else:
                assert n in (2, 3, 4, 5, 6, 8)
    w, a = _budget_bits(out, exclude=("stem.0", "fc") if pin else ())
    assert w <= 4.5 and a <= 3.5
    s = _read(out / "search.json")
    assert s["family"] == family and s["generations_run"] == 2
    assert (s["avg_w_bits_searched"], s["avg_a_bits_searched"]) == pytest.approx((w, a), rel=1e-12)
    _, rows = _log(out)
    assert [r[0] for r in rows] == ["0", "1", "2"]
    assert s["fitness"] == float(rows[-1][1]) <= float(rows[0][1])


def test_search_none_baseline_and_mixed_false(search):
    out = search("none_int", "search=none", "search.format=int", "budget.w_bits=4.5", "budget.a_bits=6")
    for e in _read(out / "qconfig.json")["layers"].values():
        assert e["w"].startswith("int<4>@") and signed(e["a"]).startswith("int<6>@")
    fixed = search("fixed_w4a4", "search.format=lp", "search.mixed=false", "search.population=4",
                   "search.generations=1", "budget.w_bits=4.5", "budget.a_bits=3.5")
    for e in _read(fixed / "qconfig.json")["layers"].values():
        assert e["w"].startswith("lp<4,") and signed(e["a"]).startswith("lp<3,")


def test_search_json_records_resolved_config_and_digest(search):
    """LPQ §11: search.json holds the settings: family, targets, the resolved search config
    (incl. the fitness settings), seeds and the config digest."""
    s = _read(search("long", *LONG) / "search.json")
    assert s["seed"] == 0 and s["calib_seed"] == 0 and s["bits"] == [2, 3, 4, 5, 6, 8]
    assert s["settings"]["population"] == 4 and s["settings"]["generations"] == 4
    flat = json.dumps(s)
    for key in ("objective", "tau", "lam", "digest"):
        assert f'"{key}"' in flat, key


@pytest.mark.parametrize("population,generations,elites,patience,max_evals", [
    (8, 6, 1, 3, 50),       # LPQ §7 small-run column
    (32, 50, 2, 10, 1532),  # LPQ §7 paper-scale column (the command line)
    (4, 4, 1, 3, 16),
])
def test_null_elites_patience_max_evals_follow_lpq_7(population, generations, elites, patience, max_evals):
    from omegaconf import OmegaConf

    from lpq.runs.search import _elites, _max_evals, _patience

    s = OmegaConf.create({"population": population, "generations": generations, "elites": None, "patience": None,
                          "max_evals": None})
    assert (_elites(s), _patience(s), _max_evals(s)) == (elites, patience, max_evals)
    s.elites, s.patience = 3, 0  # explicit values win
    assert (_elites(s), _patience(s), _max_evals(s)) == (3, 0, population + generations * (population - 3))


def test_search_json_records_derived_settings(search):
    s = _read(search("long", *LONG) / "search.json")
    assert s["settings"]["elites"] == 1 and s["settings"]["patience"] == 10 and s["settings"]["max_evals"] == 16
    assert s["search_config"]["elites"] is None  # the config as given; settings hold the derived values


def test_digits_vit_search_with_attention_matmuls(search, vit_ckpt, tmp_path):
    """Both operands of the attention matmuls are searched as activations: they count towards
    the activation budget, not the weight budget (LPQ §1, §4.3)."""
    from lpq.cli import compose
    from lpq.runs.from_config import build_quant_model

    out = tmp_path / "vit"
    assert main(["search", "model=digits_vit", f"model.checkpoint={vit_ckpt}", f"out_dir={out}", *CAL,
                 "search.population=4", "search.generations=1", "budget.w_bits=4.5", "budget.a_bits=3.5"]) == 0
    q = _read(out / "qconfig.json")["layers"]
    _, _, qm = build_quant_model(compose(["model=digits_vit", f"model.checkpoint={vit_ckpt}", "out_dir=x"]))
    assert list(q) == qm.unit_names
    assert "blocks.0.attn.qk" in q and "blocks.2.attn.av" in q
    wn = wd = an = ad = 0.0
    for u in qm.units:
        e = q[u.name]
        if u.kind in ("qk", "av"):
            for side in ("a", "w"):
                an += u.side_numel[side] * parse(e[side]).bits
                ad += u.side_numel[side]
        else:
            wn += u.weight_numel * parse(e["w"]).bits
            wd += u.weight_numel
            an += u.side_numel["a"] * parse(e["a"]).bits
            ad += u.side_numel["a"]
    assert wn / wd <= 4.5 and an / ad <= 3.5
    s = _read(out / "search.json")
    assert (s["avg_w_bits_searched"], s["avg_a_bits_searched"]) == pytest.approx((wn / wd, an / ad), rel=1e-12)
    assert s["taps"] == ["blocks.0", "blocks.1", "blocks.2"]


def test_search_never_reads_an_evaluation_image(cnn_ckpt, tmp_path, monkeypatch):
    """LPQ §6/§12 hygiene: the search has no access to the evaluation split (its IDs may be
    used to check disjointness; no evaluation image is ever read)."""
    import lpq.data.datasets as datasets
    from lpq.data.embedded import ArrayDataset, digits_split

    class Sealed(ArrayDataset):
        def __getitem__(self, i):
            raise AssertionError("lpq search read an evaluation image")

    def split(name: str):
        d = digits_split(name)
        return Sealed(d.images, d.labels, d.ids) if name == "val" else d

    monkeypatch.setattr(datasets, "digits_split", split)
    rc = main(["search", "model=digits_cnn", f"model.checkpoint={cnn_ckpt}", f"out_dir={tmp_path}", *CAL,
               "search=none"])
    assert rc == 0
