"""Model providers: timm by name, a user's Python entry point, and the embedded models."""
from .providers import build_model, LoadedModel

__all__ = ["build_model", "LoadedModel"]
