"""featlab.nfa against numpy: AGOP from finite-difference Jacobians, the chain-rule
identity G = m² WᵀKW, correlations, and the deep-linear NFA theorem."""

import numpy as np
import pytest

from featlab import nfa


def forward(ws, bs, mults, x, act):
    h = x
    for l, (w, b, m) in enumerate(zip(ws, bs, mults)):
        h = m * h @ w.T + (0 if b is None else b)
        if l < len(ws) - 1:
            h = act(h)
    return h


def fd_agop(ws, bs, mults, x, act, eps=1e-6):
    """(1/n) Σ_i J(x_i)ᵀ J(x_i) with J by central finite differences."""
    n, d = x.shape
    g = np.zeros((d, d))
    for i in range(n):
        cols = []
        for j in range(d):
            e = np.zeros(d)
            e[j] = eps
            fp = forward(ws, bs, mults, (x[i] + e)[None], act)[0]
            fm = forward(ws, bs, mults, (x[i] - e)[None], act)[0]
            cols.append((fp - fm) / (2 * eps))
        jac = np.stack(cols, axis=1)  # c × d
        g += jac.T @ jac
    return g / n


def test_agop_matches_finite_differences_and_chain_rule():
    rng = np.random.default_rng(0)
    ws = [rng.normal(size=(6, 4)), rng.normal(size=(5, 6)), rng.normal(size=(2, 5))]
    bs = [rng.normal(size=6), None, rng.normal(size=2)]
    mults = [1.0, 0.5, 2.0]
    x = rng.normal(size=(17, 4))
    g, k = nfa.agop(ws, x, activation="tanh", biases=bs, mults=mults, batch=5)
    ref = fd_agop(ws, bs, mults, x, np.tanh)
    np.testing.assert_allclose(g[0], ref, rtol=1e-7, atol=1e-8)
    assert [a.shape for a in g] == [(4, 4), (6, 6), (5, 5)]
    assert [a.shape for a in k] == [(6, 6), (5, 5), (2, 2)]
    for l in range(3):
        np.testing.assert_allclose(g[l], mults[l] ** 2 * ws[l].T @ k[l] @ ws[l], rtol=1e-10, atol=1e-12)


def test_nfm_correlation_and_alpha_fit():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(7, 5))
    np.testing.assert_allclose(nfa.nfm(w), w.T @ w, rtol=1e-14)
    a, b = rng.normal(size=(3, 3)), rng.normal(size=(3, 3))
    assert nfa.correlation(a, b) == pytest.approx(np.corrcoef(a.ravel(), b.ravel())[0, 1], rel=1e-12)
    cos = (a * b).sum() / np.linalg.norm(a) / np.linalg.norm(b)
    assert nfa.correlation(a, b, "cosine") == pytest.approx(cos, rel=1e-12)
    # an AGOP whose 1/3 power is exactly the NFM: best α = 1/3 both ways
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    lam = np.array([5.0, 3.0, 2.0, 1.0, 0.5])
    f = q @ np.diag(lam) @ q.T
    g = q @ np.diag(lam ** 3) @ q.T
    fit = nfa.alpha_fit(f, g)
    assert fit["alpha"] == pytest.approx(1 / 3, abs=1e-6) and fit["corr"] == pytest.approx(1.0, abs=1e-10)
    assert fit["alpha_spectrum"] == pytest.approx(1 / 3, rel=1e-9)
    corr = nfa.nfa_correlation(f, g, [1 / 3, 1.0])
    assert corr[0] == pytest.approx(1.0, abs=1e-12) and corr[1] < 1.0


def test_measure_deep_linear_balanced_nfa_theorem():
    """Balanced deep linear net (W_{l+1}ᵀW_{l+1} = W_l W_lᵀ): W₁ᵀW₁ = G^{1/L} exactly on
    whitened inputs (Tansley et al. 2025), so the fit gives α = 1/L."""
    rng = np.random.default_rng(2)
    d, L = 4, 3
    u, _ = np.linalg.qr(rng.normal(size=(d, d)))
    v, _ = np.linalg.qr(rng.normal(size=(d, d)))
    s = np.diag([1.5, 1.2, 0.9, 0.7])
    # W_l = U_{l} S U_{l-1}ᵀ with orthogonal U_l: balanced
    us = [v] + [np.linalg.qr(rng.normal(size=(d, d)))[0] for _ in range(L - 1)] + [u]
    ws = [us[l + 1] @ s @ us[l].T for l in range(L)]
    x = rng.normal(size=(64, d))
    x = (x - x.mean(0)) @ np.linalg.inv(np.linalg.cholesky(np.cov(x.T, bias=True))).T
    m = nfa.measure(ws, x, activation="linear", alpha=1 / L, init_weights=[0.9 * w for w in ws])
    assert m["nfm_agop_corr"][0] == pytest.approx(1.0, abs=1e-10)
    assert m["alpha_fit"][0] == pytest.approx(1 / L, abs=1e-5)
    assert m["alpha_spectrum"][0] == pytest.approx(1 / L, rel=1e-8)
    assert m["rel_change"][0] == pytest.approx(0.1, rel=1e-12)
    assert len(m["agop"]) == L


def test_bad_inputs():
    w = np.ones((3, 2))
    with pytest.raises(ValueError, match="columns"):
        nfa.agop([w], np.ones((4, 3)))
    with pytest.raises(ValueError, match="shape mismatch"):
        nfa.agop([w, np.ones((2, 2))], np.ones((4, 2)))
    with pytest.raises(ValueError, match="activation"):
        nfa.agop([w], np.ones((4, 2)), activation="swish")
    with pytest.raises(ValueError, match="2-D"):
        nfa.nfm(np.ones(3))
    with pytest.raises(ValueError, match="pearson or cosine"):
        nfa.correlation(w, w, "spearman")


def test_correlations_table_covers_every_convention_and_agrees_with_the_pieces():
    """featlab.nfa.correlations (the user story's one call): every layer × {pearson, cosine} ×
    α ∈ {1/2, 1, 1/L} × {uncentered, centered AGOP}, plus UC-NFC and C-NFC, each equal to the
    value computed from agop / nfm / nfa_correlation / measure directly."""
    rng = np.random.default_rng(5)
    ws = [rng.normal(size=(6, 4)), rng.normal(size=(5, 6)), rng.normal(size=(2, 5))]
    w0 = [w + 0.3 * rng.normal(size=w.shape) for w in ws]
    x = rng.normal(size=(40, 4))
    t = nfa.correlations(ws, x, activation="tanh", init_weights=w0)
    L = len(ws)
    assert len(t) == L * (2 * 3 * 2 + 2 + 2)
    assert {r["alpha_label"] for r in t if r["metric"] == "nfa"} == {"1/2", "1", "1/L"}
    g_unc, k_unc = nfa.agop(ws, x, activation="tanh")
    g_cen, _ = nfa.agop(ws, x, activation="tanh", center=True)
    for r in t:
        l = r["layer"] - 1
        if r["metric"] == "nfa" and r["centered"] and l == L - 1:
            continue  # vanishing centered AGOP: NaN (checked below)
        if r["metric"] == "nfa":
            g = g_cen[l] if r["centered"] else g_unc[l]
            want = nfa.nfa_correlation(nfa.nfm(ws[l]), g, r["alpha"], r["kind"])
            if r["alpha_label"] == "1/L":
                assert r["alpha"] == pytest.approx(1 / L, rel=1e-15)
        else:
            m = nfa.measure(ws, x, activation="tanh", init_weights=w0, correlation=r["kind"])
            want = m[r["metric"]][l]
        assert r["corr"] == pytest.approx(want, rel=1e-12, abs=1e-14), r
    assert len(t.layer(2)) == len(t) // L
    # the last layer's Jacobian W_L is the same for every input: its centered AGOP is zero
    last = [r for r in t.layer(L) if r["metric"] == "nfa" and r["centered"]]
    assert last and all(np.isnan(r["corr"]) for r in last)
    cols = t.to_dict()
    assert cols["corr"].shape == (len(t),) and set(cols) == set(nfa.CorrelationTable.columns)
    assert "layer 3" in repr(t)
    with pytest.raises(ValueError, match="1/L"):
        nfa.correlations(ws, x, alphas=["1/2L"])
    with pytest.raises(ValueError, match="pearson or cosine"):
        nfa.correlations(ws, x, kinds=["spearman"])


def test_correlations_deep_linear_balanced_is_one_at_one_over_depth():
    """Balanced deep linear net on whitened inputs: the α = 1/L row of layer 1 is 1."""
    rng = np.random.default_rng(2)
    d, L = 4, 3
    us = [np.linalg.qr(rng.normal(size=(d, d)))[0] for _ in range(L + 1)]
    s = np.diag([1.5, 1.2, 0.9, 0.7])
    ws = [us[l + 1] @ s @ us[l].T for l in range(L)]
    x = rng.normal(size=(64, d))
    x = (x - x.mean(0)) @ np.linalg.inv(np.linalg.cholesky(np.cov(x.T, bias=True))).T
    t = nfa.correlations(ws, x, activation="linear", centered=[False])
    row = [r for r in t.layer(1) if r["alpha_label"] == "1/L" and r["kind"] == "pearson"][0]
    assert row["corr"] == pytest.approx(1.0, abs=1e-10)
    other = [r for r in t.layer(1) if r["alpha_label"] == "1" and r["kind"] == "pearson"][0]
    assert other["corr"] < 1.0 - 1e-6
