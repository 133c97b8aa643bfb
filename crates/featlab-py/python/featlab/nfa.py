"""The Neural Feature Ansatz on numpy arrays: NFM, AGOP and PTK of any layered model given
its weights and inputs, NFA correlations, UC-/C-NFC, best-fit α. Rust:
``featlab::theory::nfa`` (see ``docs/nfa.md``).

Layered model (weights ``W_l`` are fan-out × fan-in, as numpy/PyTorch store them)::

    h_l = m_l W_l x_l + b_l,   x_{l+1} = σ(h_l)   (σ after every layer but the last),
    f(x) = h_L.

* NFM: ``W_lᵀ W_l`` (d_l × d_l).
* AGOP: ``G_l = (1/n) Σ_i J_l(x_i)ᵀ J_l(x_i)``, ``J_l = ∂f/∂x_l`` (c × d_l), outputs summed
  (Radhakrishnan et al., Science 2024); ``center=True`` subtracts the mean Jacobian.
* PTK: ``K_l = (1/n) Σ_i P_l(x_i)ᵀ P_l(x_i)``, ``P_l = ∂f/∂h_l``; ``G_l = m_l² W_lᵀ K_l W_l``
  (Beaglehole, Mitliagkas & Agarwala, TMLR 2024).
* NFA correlation ``ρ(W_lᵀW_l, G_l^α)`` (Pearson of the flattened matrices by default, or
  cosine); UC-NFC ``ρ(WᵀW, WᵀKW)``; C-NFC ``ρ(ΔWᵀΔW, ΔWᵀKΔW)``, ``ΔW = W − W₀``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ._featlab import nfa as _native

__all__ = ["nfm", "agop", "measure", "correlation", "nfa_correlation", "alpha_fit"]


def _m(a, name: str = "matrix") -> np.ndarray:
    m = np.ascontiguousarray(a, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"shape mismatch: {name} must be 2-D, got shape {m.shape}")
    return m


def _ws(weights: Sequence[Any], name: str = "weights") -> List[np.ndarray]:
    return [_m(w, f"{name}[{i}]") for i, w in enumerate(weights)]


def _bs(biases):
    if biases is None:
        return None
    return [None if b is None else np.ascontiguousarray(b, dtype=np.float64).reshape(-1) for b in biases]


def nfm(w) -> np.ndarray:
    """Neural feature matrix ``WᵀW`` of a k × d weight (d × d)."""
    return _native.nfm(_m(w, "w"))


def agop(weights: Sequence[Any], x, *, activation: str = "relu", biases=None,
         mults: Optional[Sequence[float]] = None, center: bool = False,
         batch: int = 512) -> Tuple[List[np.ndarray], List[np.ndarray]]:
    """AGOPs ``[G_1, …, G_L]`` (d_l × d_l) and PTKs ``[K_1, …, K_L]`` (k_l × k_l) of the
    layered model with ``weights`` (W_l fan-out × fan-in), optional ``biases`` (None per
    layer allowed) and forward multipliers ``mults`` (default 1), over the rows of ``x``
    (n × d). Exact per-sample Jacobians, batched; runs with the GIL released."""
    return _native.agop(_ws(weights), _m(x, "x"), activation, _bs(biases),
                        None if mults is None else [float(m) for m in mults], bool(center), int(batch))


def measure(weights: Sequence[Any], x, *, init_weights: Optional[Sequence[Any]] = None,
            activation: str = "relu", biases=None, mults: Optional[Sequence[float]] = None,
            alpha: float = 0.5, correlation: str = "pearson", center: bool = False,
            batch: int = 512, alpha_min: float = 0.02, alpha_max: float = 2.0) -> Dict[str, Any]:
    """Every layer's NFA metrics, as the NFA presets report them. Returns lists over layers:
    ``nfm_agop_corr`` ρ(WᵀW, G^α); ``alpha_fit`` argmax_α∈[alpha_min, alpha_max] ρ(WᵀW, G^α)
    and ``alpha_fit_corr`` the ρ there; ``alpha_spectrum`` the slope of log λ(WᵀW) against
    log λ(G); ``uc_nfc`` ρ(WᵀW, WᵀKW); ``c_nfc`` ρ(ΔWᵀΔW, ΔWᵀKΔW) with ΔW = W − W₀
    (``init_weights``; NaN without them); ``rel_change`` ‖W − W₀‖_F/‖W‖_F; plus the
    matrices ``agop`` and ``ptk``."""
    init = None if init_weights is None else _ws(init_weights, "init_weights")
    return _native.measure(_ws(weights), _m(x, "x"), init, activation, _bs(biases),
                           None if mults is None else [float(m) for m in mults], float(alpha),
                           correlation, bool(center), int(batch), float(alpha_min), float(alpha_max))


def correlation(a, b, kind: str = "pearson") -> float:
    """ρ(A, B): Pearson correlation of the flattened matrices (``"pearson"``, the public
    NFA code's convention) or cosine ⟨A, B⟩_F/(‖A‖_F‖B‖_F); NaN when one is constant/zero."""
    return _native.correlation(_m(a, "a"), _m(b, "b"), kind)


def nfa_correlation(nfm, agop, alpha=0.5, kind: str = "pearson"):
    """ρ(NFM, G^α) with G^α the PSD power of the AGOP (eigenvalues clipped at 0); ``alpha``
    a number or a sequence (returns a float or an array)."""
    scalar = np.ndim(alpha) == 0
    alphas = [float(a) for a in np.atleast_1d(alpha)]
    out = _native.nfa_correlation(_m(nfm, "nfm"), _m(agop, "agop"), alphas, kind)
    return out[0] if scalar else np.asarray(out)


def alpha_fit(nfm, agop, *, alpha_min: float = 0.02, alpha_max: float = 2.0,
              kind: str = "pearson") -> Dict[str, float]:
    """Best-fit exponent of NFM ≈ G^α two ways: ``alpha`` = argmax over [alpha_min,
    alpha_max] of ρ(NFM, G^α) (``corr`` the ρ there), and ``alpha_spectrum`` the
    least-squares slope of log λ_k(NFM) on log λ_k(G) (eigenvalues paired in descending
    order, those above 1e-8 × the largest)."""
    a, r, s = _native.alpha_fit(_m(nfm, "nfm"), _m(agop, "agop"), float(alpha_min), float(alpha_max), kind)
    return {"alpha": a, "corr": r, "alpha_spectrum": s}
