"""quant.unsigned_acts=auto through `lpq search` and `lpq evaluate`: the never-negative activation sides search the
unsigned variant of every family (genes, qconfig strings, bit accounting), the first layer's signed input stays
signed, the run is deterministic, the qconfig evaluates with nothing clamped, and a signed run's digest is what it
was before the option existed."""
from __future__ import annotations

import json

import pytest

from lpq.cli import main
from lpq.formats import parse
from lpq.search.ga import _side_record
from lpq.search.genome import FAMILIES, Side, make_family

CAL = ["calib.num_samples=64", "calib.batch=32", "calib.subsample=4096"]
RUN = ["search.population=4", "search.generations=1", "budget.w_bits=4", "budget.a_bits=4"]


@pytest.mark.parametrize("family", ["lp", "int", "fp", "posit", "af", "ant"])
def test_search_unsigned_sides(cnn_ckpt, tmp_path, family):
    base = ["model=digits_cnn", f"model.checkpoint={cnn_ckpt}", *CAL]
    out = tmp_path / "s"
    assert main(["search", *base, *RUN, f"search.format={family}", "quant.unsigned_acts=auto", f"out_dir={out}"]) == 0
    report = json.loads((out / "search.json").read_text())
    qc = json.loads((out / "qconfig.json").read_text())
    layers = list(qc["layers"].items())
    assert report["unsigned_acts"] == "auto" and report["unsigned_sides"] == len(layers) - 1
    assert qc["unsigned_acts"] == "auto"
    first, rest = layers[0][1], layers[1:]
    assert parse(first["a"]).signed  # the image can be negative
    for _, entry in rest:
        fmt = parse(entry["a"])
        assert not fmt.signed and parse(entry["w"]).signed
    assert report["avg_a_bits"] <= 4 + 1e-9  # an unsigned n-bit side counts n bits
    again = tmp_path / "again"
    assert main(["search", *base, *RUN, f"search.format={family}", "quant.unsigned_acts=auto", f"out_dir={again}"]) == 0
    assert (again / "qconfig.json").read_text() == (out / "qconfig.json").read_text()
    ev = tmp_path / "eval"
    assert main(["evaluate", *base, f"quant.config={out / 'qconfig.json'}", f"out_dir={ev}"]) == 0
    metrics = json.loads((ev / "metrics.json").read_text())
    assert metrics["unsigned_units"] == len(layers) - 1 and metrics["unsigned_clamped"] == 0


def test_signed_digest_unchanged_and_views():
    side = Side("u", "a", False, 10, False, 0)
    assert "unsigned" not in _side_record(side)  # digests of signed runs do not change
    assert _side_record(Side("u", "a", False, 10, False, 0, True))["unsigned"] is True
    fam = make_family("lp", [2, 4, 8], 2 ** -8)
    view = fam.unsigned_view()
    g = (4, 1, 3, 0.5)
    assert fam.spec(g) == "lp<4,1,3,0.5>" and view.spec(g) == "ulp<4,1,3,0.5>" and not fam.unsigned
    assert view.grid_n(4) == 5 and fam.grid_n(4) == 4
    fp = make_family("fp", [4, 8], 2 ** -8).unsigned_view()
    assert fp.spec((4, 2, 1.0)) == "ufp<2,2>@1" and parse(fp.spec((4, 2, 1.0))).bits == 4


@pytest.mark.parametrize("n", [2, 3, 4, 6, 8])
def test_unsigned_lp_genes_span_the_ulp_range(n):
    """ulp<n> is the non-negative half of lp<n+1>: its genes reach rs = n and es = min(es_max, n - 1), the range
    `resolve('ulp<n,*,*,*>')` calibrates over (a search=none run and lpq evaluate chose different ulp strings while
    the genes stopped at the signed range); every structure is a valid ulp and clamping keeps it."""
    signed = make_family("lp", [n], 2**-8, es_max=3)
    unsigned = signed.unsigned_view()
    rs = {s[1] for s in unsigned.structures(n)}
    es = {s[0] for s in unsigned.structures(n)}
    assert max(rs) == n and max(es) == min(3, n - 1)
    assert max(s[1] for s in signed.structures(n)) == max(1, n - 1)
    for s in unsigned.structures(n):
        assert unsigned.clamp_structure(n, s) == s
        parse(unsigned.spec(unsigned.make(n, s, 0.0)))  # a valid ulp spec
    assert unsigned.clamp_structure(n, (9, 99)) == (min(3, n - 1), n)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_gene_structure_is_a_valid_spec_signed_and_unsigned(family):
    """At every width 2..8 each structure a family's genes may take — signed, and the unsigned view of a
    never-negative side — parses. Regression: an unsigned ANT side mutated to 6 bits kept the pot type, and
    `upot<6>` (upot stops at n = 5) failed a ResNet-32 w4a4-mix search after 60 evaluations."""
    bits = list(range(2, 9))
    for fam in (make_family(family, bits, 2 ** -8), make_family(family, bits, 2 ** -8).unsigned_view()):
        for n in fam.bits:
            structures = fam.structures(n)
            assert structures, (family, fam.unsigned, n)
            for s in structures:
                assert fam.clamp_structure(n, s) == s
                fmt = parse(fam.spec(fam.make(n, s, 0.0)))
                assert fmt.bits == n and fmt.signed != fam.unsigned, (family, n, s)


def test_unsigned_ant_types_follow_the_unsigned_ranges():
    """The unsigned ANT genes offer what `uant<n>` chooses from (ant_candidates): uflint from 2 bits, upot up
    to 5, int only from 7; the signed genes are those of `ant<n>` (and int, pot at n = 2)."""
    from lpq.formats.ant import ant_candidates

    fam = make_family("ant", list(range(2, 9)), 2 ** -8)
    view = fam.unsigned_view()
    names = lambda f, n: [f.spec(f.make(n, s, 0.0)).partition("@")[0] for s in f.structures(n)]
    for n in range(2, 8):
        assert names(view, n) == ant_candidates(n, True)
    for n in range(3, 9):
        assert names(fam, n) == ant_candidates(n)
    assert names(fam, 2) == ["int<2>", "pot<2>"] and names(view, 2) == ["uint<2>", "uflint<2>", "upot<2>"]
    assert view.structures(6) == [(0,), (1,)] and fam.structures(6) == [(0,), (1,), (2,)]
    assert view.clamp_structure(6, (2,)) == (0,)  # a pot gene moved to 6 bits becomes uint<6>, not upot<6>
    assert view.structures(8) == fam.structures(8) == [(0,)]
