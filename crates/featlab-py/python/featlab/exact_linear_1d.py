"""Exact finite-width solution of a linear network on 1-D data (Xu & Ziyin 2024), on numpy
arrays. Rust: ``featlab::theory::exact_linear_1d``; derivation and checks in
``docs/exact-linear-1d.md``.

Model ``f(x) = γ (u·w) x`` with readout ``u`` and first layer ``w`` (width d), loss
``L = (1/2n) Σ (f(x_i) − y_i)²``, gradient flow with layer-wise rates η_u, η_w::

    du/dt = −η_u γ s r w,   dw/dt = −η_w γ s r u,   r = β − k,   β = γ u·w,
    s = E[x²],   k = E[xy]/E[x²],   L = (s/2) r² + L*,   L* = ½ E[(y − k x)²].

The flow is a hyperbolic rotation of (u/√η_u, w/√η_w); ``z = e^{2τ}`` solves a Riccati
equation in closed form, and the NTK ``K = γ²(η_u|w|² + η_w|u|²)`` (``dβ/dt = −s K r``) is
a function of β alone: ``K(t)² = γ⁴C² + 4γ²η_uη_w(β² + ω²)`` with the conserved
imbalance ``C = η_w|u|² − η_u|w|²`` and ``ω = |γ| |u₀ ∧ w₀|``.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np

from ._featlab import exact_linear_1d as _native

__all__ = ["solve", "order_parameters", "phase_diagram"]


def _vec(a, name: str) -> np.ndarray:
    """A contiguous 1-D float64 array (an n×1 column is accepted)."""
    v = np.asarray(a, dtype=np.float64)
    if v.ndim == 2 and v.shape[1] == 1:
        v = v[:, 0]
    if v.ndim != 1:
        raise ValueError(f"shape mismatch: {name} must be 1-D (or n×1), got shape {v.shape}")
    return np.ascontiguousarray(v)


def solve(
    x,
    y,
    u0,
    w0,
    t,
    *,
    gamma: float = 1.0,
    lr_u: float = 1.0,
    lr_w: float = 1.0,
    vectors: bool = False,
) -> Dict[str, Any]:
    """The exact gradient-flow state at the times ``t`` (no integration).

    Parameters: data ``x``, ``y`` (n samples, scalar), initial weights ``u0``, ``w0``
    (length d), times ``t`` ≥ 0, output scale γ and learning rates η_u (readout), η_w.

    Returns a dict of 1-D arrays over ``t``: ``t``, ``beta`` (γ u·w), ``residual``
    (β − k, without cancellation), ``loss`` ((s/2) r² + L*), ``ntk`` (K), ``cos_angle``
    (cos∠(u, w) = sign(γ) β/√(β² + ω²)), ``norm_u``, ``norm_w``, ``log_z`` (2τ); with
    ``vectors=True`` also ``u`` and ``w`` (len(t) × d); and the scalars ``s``, ``k``,
    ``loss_floor``.
    """
    return _native.solve(
        _vec(x, "x"), _vec(y, "y"), _vec(u0, "u0"), _vec(w0, "w0"),
        _vec(np.atleast_1d(t), "t"), float(gamma), float(lr_u), float(lr_w), bool(vectors),
    )


def order_parameters(x, y, u0, w0, *, gamma: float = 1.0, lr_u: float = 1.0,
                     lr_w: float = 1.0) -> Dict[str, float]:
    """The t → ∞ order parameters of one initialisation, exactly:

    ``kbar`` K̄ = K(0)/(2|γ|√(η_uη_w)); ``beta0``; ``beta_inf`` (k unless unreachable);
    ``rho0`` = β₀/K̄; ``ntk_rel_change`` Δ = K(∞)/K(0) − 1 = √(1 + (β∞² − β₀²)/K̄²) − 1;
    ``log_z_plus`` = 2τ(∞); ``cos0``, ``cos_inf``; ``log_norm_ratio_u/w`` = ln(|u∞|/|u₀|),
    ln(|w∞|/|w₀|).
    """
    return _native.order_parameters(
        _vec(x, "x"), _vec(y, "y"), _vec(u0, "u0"), _vec(w0, "w0"),
        float(gamma), float(lr_u), float(lr_w),
    )


def phase_diagram(
    *,
    width,
    gamma=1.0,
    sigma_u=1.0,
    sigma_w=1.0,
    lr=1.0,
    lr_ratio=1.0,
    s=1.0,
    k=1.0,
    gamma_exponent=0.0,
    sigma_exponent=None,
    sigma_u_exponent=0.0,
    sigma_w_exponent=0.0,
    lr_ratio_exponent=0.0,
    replicates: int = 9,
    seed: int = 0,
) -> Dict[str, np.ndarray]:
    """Kernel vs feature-learning order parameters on a grid, vectorised: every argument
    broadcasts (numpy rules) and the results have the broadcast shape.

    Hyperparameters follow power laws in the width d: γ = γ₀ d^{−a}, σ_u² = σ_u,0² d^{−b_u},
    σ_w² = σ_w,0² d^{−b_w}, η_u/η_w = ratio₀ d^{c} at fixed √(η_uη_w) = ``lr``
    (``gamma_exponent`` a, ``sigma_u_exponent`` b_u, ``sigma_w_exponent`` b_w — or
    ``sigma_exponent`` for both —, ``lr_ratio_exponent`` c); the data enter through
    s = E[x²] and k = E[xy]/E[x²]. Each cell draws ``replicates`` Gaussian inits exactly
    through (|u₀|², |w₀|², u₀·w₀) (χ² and normal draws) from the stream
    (``seed``, "phase-cell-{i}"), i the flat cell index, and returns medians of

    * ``ntk_rel_change`` Δ = K(∞)/K(0) − 1 (→ 0: kernel regime; Θ(1): feature learning),
    * ``abs_log_ntk_ratio`` |ln K(∞)/K(0)|, ``abs_log_z_plus`` |ln z₊| (weight movement),
    * ``alignment_change`` cos²∠(u∞, w∞) − cos²∠(u₀, w₀),

    plus the analytic ``boundary_log_ratio`` ln(K̄_typical/|k|) with
    K̄_typical = |γ| d (σ_u² √(η_w/η_u) + σ_w² √(η_u/η_w))/2 (> 0 kernel side; the boundary
    is K̄ = |k|) and ``kernel_exponent`` e = 1 − a + max(−b_u − c/2, −b_w + c/2)
    (K̄ ~ d^e: kernel iff e > 0). Runs with the GIL released.
    """
    if sigma_exponent is not None:
        sigma_u_exponent = sigma_w_exponent = sigma_exponent
    args = np.broadcast_arrays(*[np.asarray(a, dtype=np.float64) for a in (
        width, gamma, sigma_u, sigma_w, lr, lr_ratio, s, k,
        gamma_exponent, sigma_u_exponent, sigma_w_exponent, lr_ratio_exponent)])
    shape = args[0].shape
    flat = [np.ascontiguousarray(a.reshape(-1)) for a in args]
    out = _native.phase_cells(*flat, int(replicates), int(seed))
    return {name: v.reshape(shape) for name, v in out.items()}
