"""LPQ: genetic search of per-layer formats with a global-local contrastive objective (LPQ.md)."""
