"""Fitness terms (LPQ §4.1, §4.2): InfoNCE against the hand-computed vectors, its properties,
the ablation objectives and tap pooling."""
from __future__ import annotations

import math

import pytest
import torch

from lpq.search.objective import infonce, logits_term, pool

U3 = [[1.0, 2.0, 0.0], [0.0, 1.0, 1.0], [3.0, 0.0, 1.0]]
V3 = [[1.0, 2.0, 0.5], [0.0, 1.0, 2.0], [2.0, 0.0, 1.0]]
I2 = [[1.0, 0.0], [0.0, 1.0]]

# LPQ §4.1 test vectors: (U, V, tau, InfoNCE with 2τ, cross-entropy part)
VECTORS = [
    (I2, I2, 1.0, 0.6265233750, 0.3132616875),
    (I2, I2, 3.0, 3.241833448, 0.5403055747),
    (U3, V3, 3.0, 5.912124153, 0.9853540255),
    (U3, V3, 1.0, 1.570454581, 0.7852272903),
    ([U3[1], U3[0], U3[2]], V3, 3.0, 6.414168567, None),
]


def _reference(u, v, tau: float) -> float:
    """LPQ §4.1 in float64, written out with plain Python."""
    def unit(r):
        n = max(math.sqrt(sum(x * x for x in r)), 1e-12)
        return [x / n for x in r]

    U, V = [unit(r) for r in u], [unit(r) for r in v]
    B = len(U)
    total = 0.0
    for i in range(B):
        s = [sum(a * b for a, b in zip(U[i], V[j])) / tau for j in range(B)]
        total += math.log(sum(math.exp(x) for x in s)) - s[i]
    return 2 * tau * total / B


@pytest.mark.parametrize("u,v,tau,want,ce", VECTORS)
def test_infonce_matches_lpq_vectors(u, v, tau, want, ce):
    got = infonce(torch.tensor(u), torch.tensor(v), tau)
    assert got.dtype == torch.float32 and got.dim() == 0
    assert float(got) == pytest.approx(want, rel=1e-6, abs=1e-6)
    assert _reference(u, v, tau) == pytest.approx(want, rel=1e-9)  # the table itself
    if ce is not None:
        assert float(got) / (2 * tau) == pytest.approx(ce, rel=1e-6, abs=1e-6)


def test_infonce_float64_input_is_computed_in_float32():
    got = infonce(torch.tensor(U3, dtype=torch.float64), torch.tensor(V3, dtype=torch.float64), 3.0)
    assert got.dtype == torch.float32
    assert float(got) == pytest.approx(5.912124153, rel=1e-6)


def test_permuting_u_rows_raises_infonce():
    gen = torch.Generator().manual_seed(0)
    v = torch.randn(16, 10, generator=gen)
    u = v + 0.05 * torch.randn(16, 10, generator=gen)  # a good quantized model: rows close to FP
    base = float(infonce(u, v, 3.0))
    for k in range(5):
        perm = torch.randperm(16, generator=gen)
        if torch.equal(perm, torch.arange(16)):
            continue
        assert float(infonce(u[perm], v, 3.0)) > base
    u3, v3 = torch.tensor(U3), torch.tensor(V3)
    assert float(infonce(u3[[1, 0, 2]], v3, 3.0)) > float(infonce(u3, v3, 3.0))


def test_infonce_properties():
    gen = torch.Generator().manual_seed(1)
    u, v = torch.randn(8, 5, generator=gen), torch.randn(8, 5, generator=gen)
    # invariant to positive row scaling (rows are normalised); zero rows are safe
    scale = torch.rand(8, 1, generator=gen) * 10 + 0.1
    assert float(infonce(u * scale, v, 3.0)) == pytest.approx(float(infonce(u, v, 3.0)), rel=1e-5)
    z = u.clone()
    z[0] = 0
    assert math.isfinite(float(infonce(z, v, 3.0)))
    # maps are flattened per sample (pooling 'flatten' passes [B, C, H, W])
    m, n = torch.randn(4, 2, 3, 3, generator=gen), torch.randn(4, 2, 3, 3, generator=gen)
    assert float(infonce(m, n, 1.0)) == pytest.approx(float(infonce(m.reshape(4, -1), n.reshape(4, -1), 1.0)), rel=1e-6)
    # the identical pair is the minimum over row permutations of U; stable at small τ
    assert float(infonce(v, v, 0.1)) < float(infonce(v[[1, 0, 2, 3, 4, 5, 6, 7]], v, 0.1))
    assert math.isfinite(float(infonce(u * 1e6, v, 0.01)))
    assert float(infonce(u, v, 3.0)) == pytest.approx(_reference(u.tolist(), v.tolist(), 3.0), rel=1e-5)


def test_logits_term_objectives():
    gen = torch.Generator().manual_seed(2)
    q, fp = torch.randn(6, 10, generator=gen), torch.randn(6, 10, generator=gen)
    assert float(logits_term("infonce", q, fp, 3.0)) == float(infonce(q, fp, 3.0))
    assert float(logits_term("global_only", q, fp, 3.0)) == float(infonce(q, fp, 3.0))
    assert float(logits_term("mse", q, fp, 3.0)) == pytest.approx(float(((q - fp) ** 2).mean()), rel=1e-6)
    p, lq = torch.softmax(fp, 1), torch.log_softmax(q, 1)
    kl = float((p * (torch.log(p) - lq)).sum(1).mean())  # KL(FP || quantized), batch mean
    assert float(logits_term("kl", q, fp, 3.0)) == pytest.approx(kl, rel=1e-5)
    assert float(logits_term("kl", fp, fp, 3.0)) == pytest.approx(0.0, abs=1e-6)
    assert float(logits_term("mse", fp, fp, 3.0)) == 0.0
    with pytest.raises(ValueError, match="search.objective"):
        logits_term("cosine", q, fp, 3.0)


def test_pool_modes():
    x = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2)
    assert torch.equal(pool(x, "mean"), x.mean(dim=(2, 3)))  # CNN: mean over H×W -> C
    t = torch.randn(2, 5, 4)
    assert torch.equal(pool(t, "mean"), t.mean(dim=1))  # ViT: mean over all tokens -> D
    assert pool(x, "flatten").shape == (2, 12)
    assert pool(torch.randn(2, 7), "mean").shape == (2, 7)
    with pytest.raises(ValueError, match="calib.pooling"):
        pool(x, "max")
