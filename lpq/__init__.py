"""lpq: Logarithmic Posits (LP), the LPQ search and their baselines (arXiv 2403.05465)."""
__version__ = "0.1.0"
