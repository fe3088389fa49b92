"""Fitness terms (LPQ §4.1-4.2): InfoNCE between quantized and FP rows, and the ablation
objectives on logits."""
from __future__ import annotations

import torch
import torch.nn.functional as F

OBJECTIVES = ("infonce", "global_only", "mse", "kl", "paper")


def infonce(u: torch.Tensor, v: torch.Tensor, tau: float) -> torch.Tensor:
    """2τ · mean_i [logsumexp_j(ũ_i·ṽ_j/τ) − ũ_i·ṽ_i/τ] with row-normalised U (quantized)
    and V (FP); sample i's positive is its own FP row, the other rows are negatives."""
    u = u.reshape(u.shape[0], -1).float()
    v = v.reshape(v.shape[0], -1).float()
    u = u / u.norm(dim=1, keepdim=True).clamp_min(1e-12)
    v = v / v.norm(dim=1, keepdim=True).clamp_min(1e-12)
    s = (u @ v.T) / tau
    return 2.0 * tau * (torch.logsumexp(s, dim=1) - s.diagonal()).mean()


def concat_rows(parts: list[torch.Tensor]) -> torch.Tensor:
    """The paper objective's representation (PAPER-RESULTS §2): every part (pooled tap outputs, then the logits)
    row-normalised and concatenated, so each layer weighs the same in the InfoNCE similarity."""
    rows = [p.reshape(p.shape[0], -1).float() for p in parts]
    return torch.cat([r / r.norm(dim=1, keepdim=True).clamp_min(1e-12) for r in rows], dim=1)


def logits_term(objective: str, q_logits: torch.Tensor, fp_logits: torch.Tensor, tau: float) -> torch.Tensor:
    """The global term of the chosen objective."""
    if objective in ("infonce", "global_only"):
        return infonce(q_logits, fp_logits, tau)
    if objective == "mse":
        return F.mse_loss(q_logits.float(), fp_logits.float())
    if objective == "kl":  # KL(FP || quantized) of the softmax distributions
        return F.kl_div(F.log_softmax(q_logits.float(), 1), F.log_softmax(fp_logits.float(), 1),
                        log_target=True, reduction="batchmean")
    raise ValueError(f"search.objective={objective!r} is invalid: need one of {', '.join(OBJECTIVES)}")


def pool(x: torch.Tensor, mode: str) -> torch.Tensor:
    """One vector per sample from a tap's output (LPQ §4.2): mean over H×W for [B,C,H,W],
    over tokens for [B,N,D]; `flatten` keeps the whole map."""
    if mode == "flatten":
        return x.reshape(x.shape[0], -1)
    if mode != "mean":
        raise ValueError(f"calib.pooling={mode!r} is invalid: need mean or flatten")
    if x.dim() == 4:
        return x.mean(dim=(2, 3))
    if x.dim() == 3:
        return x.mean(dim=1)
    return x.reshape(x.shape[0], -1)
