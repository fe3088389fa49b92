"""Number formats: LP and the baseline families, behind one spec-string parser.

>>> from lpq.formats import parse
>>> parse("lp<8,1,3,0.5>").quantize(np.float32([3.0]))
"""
from .base import Format, Grid
from .spec import family_names, format_real, from_path_safe, parse, path_safe, register_family
from . import lp  # noqa: F401  (registers the family)
from .lp import LPFormat

__all__ = [
    "Format", "Grid", "LPFormat", "family_names", "format_real", "from_path_safe", "parse",
    "path_safe", "register_family",
]
