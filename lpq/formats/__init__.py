"""Number formats: LP and the baseline families, behind one spec-string parser.

>>> from lpq.formats import parse
>>> parse("lp<8,1,3,0.5>").quantize(np.float32([3.0]))
"""
from .base import Format, Grid
from .spec import family_names, format_real, from_path_safe, parse, path_safe, register_family
from . import lp  # noqa: F401  (registers the family)
from . import adaptivfloat, ant, floating, integer, lns, posit  # noqa: F401  (register the baseline families)
from . import unsigned  # noqa: F401  (registers ulp, ufp, uposit, uaf, ulns)
from .adaptivfloat import AdaptivFloatFormat
from .ant import AdaptiveANTFormat, ANTTypeFormat, choose_ant_type
from .calibrate import calibrate_sf, default_rule
from .floating import FloatFormat
from .integer import IntFormat, UIntFormat
from .lns import LNSFormat
from .lp import LPFormat
from .posit import PositFormat
from .unsigned import UnsignedFormat, is_unsigned, unsigned_variant

__all__ = [
    "Format", "Grid", "LPFormat", "family_names", "format_real", "from_path_safe", "parse",
    "path_safe", "register_family",
    "ANTTypeFormat", "AdaptiveANTFormat", "AdaptivFloatFormat", "FloatFormat", "IntFormat", "LNSFormat",
    "PositFormat", "UIntFormat", "UnsignedFormat", "is_unsigned", "unsigned_variant", "calibrate_sf", "choose_ant_type", "default_rule",
]
