"""Area model and iso-area array sizing (HWMODEL §6).

Area of a design = R·C·A_pe + (LP edge decoders: (R + C)·A_dec) + SRAM banks. Post-processing
units are identical across designs and excluded. Iso-area: designs with an ANT-given size keep
it; any other design gets the PE budget of ANT's 32×32 array of fused INT PEs (§6.2).
"""
from __future__ import annotations

from .config import Design, Profile


def pe_area_entry(design: Design, profile: Profile) -> str:
    """Area entry of the design's PE: the profile's `pe.<design>.area` where it has one (dac24), else the
    design's own `pe.area`."""
    entry = (profile.pe.get(design.name) or {}).get("area")
    return str(entry) if entry else design.pe_area


def rows_cols(n_pe: int, max_rows: int = 32) -> tuple[int, int]:
    """§6.2: R = the largest power of two ≤ max_rows with n_pe/R ≥ R/2; C = ⌊n_pe/R⌋."""
    if n_pe < 1:
        raise ValueError(f"n_pe={n_pe} is invalid: the PE budget holds no PE")
    R = 1
    while R * 2 <= max_rows and 2 * n_pe >= (R * 2) ** 2:  # n_pe/R' >= R'/2  <=>  2·n_pe >= R'^2
        R *= 2
    return R, n_pe // R


def decoder_area(design: Design, profile: Profile, rows: int, cols: int) -> float:
    """µm² of LP decoders: one per array input (R + C) in `edge` mode; in `pe` mode one per operand
    and PE (2·R·C, an 8-bit decoder split into lanes) [assumption]."""
    if design.lp_decode == "edge":
        return (rows + cols) * profile.a("lp_decoder")
    if design.lp_decode == "pe":
        return 2 * rows * cols * profile.a("lp_decoder")
    return 0.0


def iso_area_array(design: Design, profile: Profile) -> tuple[int, int]:
    """The design's array at iso-area (§6.2): its published size, else the PE-budget rule with
    the LP decoder area subtracted (iterated once with the resulting R + C)."""
    if design.array is not None:
        return design.array
    iso = profile.iso_area
    a_core = int(iso.get("anchor_count", 1024)) * profile.a(str(iso.get("anchor_pe", "fused_int_pe")))
    a_pe = profile.a(pe_area_entry(design, profile))
    max_rows = int(iso.get("max_rows", 32))
    R, C = rows_cols(int(a_core // a_pe), max_rows)
    if design.lp_decode != "none":
        R, C = rows_cols(int((a_core - decoder_area(design, profile, R, C)) // a_pe), max_rows)
    return R, C


def sram_area(profile: Profile) -> float:
    """µm² of the WBUF, IBUF and OBUF banks (§6.1): `arch.<buf>_banks` × the bank area entry."""
    banks = {buf: int(profile.arch.get(f"{buf}_banks") or 0) for buf in ("wbuf", "ibuf", "obuf")}
    return sum(n * profile.a(f"{buf}_bank") for buf, n in banks.items() if n)  # dac24: no banks (compute area only)


def design_area_mm2(design: Design, profile: Profile, rows: int, cols: int) -> dict[str, float]:
    """`area_mm2.{pe_array, decoders, sram, total}` of §8."""
    pe = rows * cols * profile.a(pe_area_entry(design, profile)) / 1e6
    dec = decoder_area(design, profile, rows, cols) / 1e6
    sram = sram_area(profile) / 1e6
    return {"pe_array": pe, "decoders": dec, "sram": sram, "total": pe + dec + sram}
