"""Lane rule (HWMODEL §3.1): lane widths b', products per PE-cycle P, temporal passes."""
from __future__ import annotations

from fractions import Fraction

import pytest

from hwmodel.lanes import lane_factor, lane_width, packed_k

FUSED = (2, 4, 8)


@pytest.mark.parametrize("b_a,b_w,P", [
    (8, 8, 1), (8, 4, 2), (4, 8, 2), (8, 2, 4), (4, 4, 4), (2, 8, 4), (4, 2, 8), (2, 4, 8), (2, 2, 16),
])
def test_fused_pe_lane_table(b_a, b_w, P):
    assert lane_factor(b_a, b_w, FUSED) == P


@pytest.mark.parametrize("bits,lane", [(1, 2), (2, 2), (3, 4), (4, 4), (5, 8), (6, 8), (7, 8), (8, 8), (12, 16), (16, 16)])
def test_lp_widths_round_up(bits, lane):
    assert lane_width(bits, FUSED) == lane


def test_ant_lanes_have_p_min_4():
    assert lane_width(2, (4, 8)) == 4 and lane_factor(2, 2, (4, 8)) == 4


@pytest.mark.parametrize("lanes", [(8,), (6,)])
def test_fixed_pes_run_every_width_at_one_product(lanes):
    assert all(lane_factor(b, b2, lanes) == 1 for b in range(1, lanes[0] + 1) for b2 in (2, lanes[0]))


def test_wide_operands_run_temporally():
    assert lane_factor(16, 16, FUSED) == Fraction(1, 4)
    assert lane_factor(16, 8, (8,)) == Fraction(1, 2)
    assert packed_k(100, Fraction(1, 4)) == 400 and packed_k(100, Fraction(16)) == 7


def test_bad_lanes_are_rejected():
    with pytest.raises(ValueError, match="lanes"):
        lane_width(4, (3, 8))
    with pytest.raises(ValueError, match="bits"):
        lane_width(0, FUSED)
