"""featlab.exact_linear_1d against a direct numerical integration of the gradient flow."""

import numpy as np
import pytest

import featlab
from featlab import exact_linear_1d as e1d


def rk4_flow(x, y, u0, w0, times, gamma, lr_u, lr_w, dt=1e-3):
    """Integrate du/dt = −η_u γ s r w, dw/dt = −η_w γ s r u (r = γ u·w − k) with RK4."""
    s = np.mean(x * x)
    k = np.mean(x * y) / s

    def f(u, w):
        r = gamma * (u @ w) - k
        return -lr_u * gamma * s * r * w, -lr_w * gamma * s * r * u

    u, w, t, out = u0.copy(), w0.copy(), 0.0, []
    for target in times:
        while t < target - 1e-12:
            h = min(dt, target - t)
            k1 = f(u, w)
            k2 = f(u + h / 2 * k1[0], w + h / 2 * k1[1])
            k3 = f(u + h / 2 * k2[0], w + h / 2 * k2[1])
            k4 = f(u + h * k3[0], w + h * k3[1])
            u = u + h / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
            w = w + h / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
            t += h
        out.append((u.copy(), w.copy()))
    return out, s, k


@pytest.mark.parametrize("gamma,lr_u,lr_w", [(1.0, 1.0, 1.0), (-0.7, 0.3, 2.0)])
def test_solve_matches_direct_integration(gamma, lr_u, lr_w):
    rng = np.random.default_rng(0)
    x = rng.normal(size=40)
    y = 1.5 * x + 0.1 * rng.normal(size=40)
    u0, w0 = 0.1 * rng.normal(size=3), 0.1 * rng.normal(size=3)
    times = np.array([0.0, 0.5, 2.0, 5.0, 12.0])
    res = e1d.solve(x, y, u0, w0, times, gamma=gamma, lr_u=lr_u, lr_w=lr_w, vectors=True)
    ref, s, k = rk4_flow(x, y, u0, w0, times, gamma, lr_u, lr_w)
    assert res["s"] == pytest.approx(s, rel=1e-14) and res["k"] == pytest.approx(k, rel=1e-14)
    for i, (u, w) in enumerate(ref):
        beta = gamma * (u @ w)
        loss = 0.5 * np.mean((gamma * (u @ w) * x - y) ** 2)
        ntk = gamma**2 * (lr_u * (w @ w) + lr_w * (u @ u))
        # RK4 with h = 1e-3 is accurate to ~1e-12 here; 1e-8 leaves room, not slack
        np.testing.assert_allclose(res["u"][i], u, rtol=1e-8, atol=1e-11)
        np.testing.assert_allclose(res["w"][i], w, rtol=1e-8, atol=1e-11)
        assert res["beta"][i] == pytest.approx(beta, rel=1e-8, abs=1e-12)
        assert res["loss"][i] == pytest.approx(loss, rel=1e-8)
        assert res["ntk"][i] == pytest.approx(ntk, rel=1e-8)
        assert res["norm_u"][i] == pytest.approx(np.linalg.norm(u), rel=1e-8)
    assert res["t"].tolist() == times.tolist()


def test_order_parameters_are_the_long_time_limit():
    rng = np.random.default_rng(1)
    x = rng.normal(size=30)
    y = -2.0 * x
    u0, w0 = rng.normal(size=5), rng.normal(size=5)
    op = e1d.order_parameters(x, y, u0, w0, gamma=0.5)
    late = e1d.solve(x, y, u0, w0, [0.0, 1e3], gamma=0.5)
    k = np.mean(x * y) / np.mean(x * x)
    assert op["beta_inf"] == pytest.approx(k, rel=1e-12)
    assert op["beta0"] == pytest.approx(0.5 * (u0 @ w0), rel=1e-12)
    assert op["ntk_rel_change"] == pytest.approx(late["ntk"][1] / late["ntk"][0] - 1, rel=1e-9)


def test_phase_diagram_broadcasts_and_separates_the_regimes():
    widths = np.array([10.0, 100.0, 10000.0])
    # NTK scaling γ = d^{-1/2}: Δ → 0 with width (kernel); mean-field γ = d^{-1}: Δ = Θ(1)
    res = e1d.phase_diagram(width=widths[:, None], gamma_exponent=np.array([0.5, 1.0])[None, :],
                            k=1.0, replicates=11, seed=3)
    assert res["ntk_rel_change"].shape == (3, 2)
    ntk, mf = res["ntk_rel_change"][:, 0], res["ntk_rel_change"][:, 1]
    assert np.all(np.diff(ntk) < 0) and ntk[-1] < 0.02
    assert np.all(mf > 0.2)
    assert res["kernel_exponent"][0].tolist() == [0.5, 0.0]
    assert np.all(np.sign(res["boundary_log_ratio"][1:, 0]) > 0)
    again = e1d.phase_diagram(width=widths[:, None], gamma_exponent=np.array([0.5, 1.0])[None, :],
                              k=1.0, replicates=11, seed=3)
    assert np.array_equal(again["ntk_rel_change"], res["ntk_rel_change"])


def test_bad_inputs():
    with pytest.raises(ValueError, match="same length"):
        e1d.solve([1.0, 2.0], [1.0, 2.0], [0.1, 0.2], [0.1], [1.0])
    with pytest.raises(ValueError, match="lr_u"):
        e1d.solve([1.0], [1.0], [0.1], [0.1], [1.0], lr_u=0.0)
    with pytest.raises(ValueError, match="times"):
        e1d.solve([1.0], [1.0], [0.1], [0.1], [-1.0])
    with pytest.raises(ValueError, match="1-D"):
        e1d.solve(np.ones((2, 2)), [1.0, 1.0], [0.1], [0.1], [1.0])
    with pytest.raises(ValueError, match="width"):
        e1d.phase_diagram(width=0.5)
    assert featlab.exact_linear_1d is e1d
