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

__all__ = ["nfm", "agop", "measure", "correlation", "nfa_correlation", "alpha_fit",
           "correlations", "CorrelationTable"]


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


class CorrelationTable:
    """The rows of :func:`correlations`, one dict per (layer, metric, convention), with
    keys ``layer`` (1-based), ``metric`` (``"nfa"``, ``"uc_nfc"`` or ``"c_nfc"``), ``kind``
    (``"pearson"`` or ``"cosine"``), ``alpha`` (the exponent of G^α; NaN for UC-/C-NFC),
    ``alpha_label`` (``"1/2"``, ``"1"``, ``"1/L"`` or the number), ``centered`` (AGOP with the
    mean Jacobian subtracted) and ``corr``.

    ``to_pandas()`` gives a DataFrame, ``to_dict()`` numpy columns, ``layer(l)`` the rows of
    one layer; ``print(table)`` shows one block per layer."""

    columns = ("layer", "metric", "kind", "alpha", "alpha_label", "centered", "corr")

    def __init__(self, rows: List[Dict[str, Any]]):
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def layer(self, l: int) -> "CorrelationTable":
        """The rows of layer ``l`` (1-based)."""
        return CorrelationTable([r for r in self.rows if r["layer"] == l])

    def to_dict(self) -> Dict[str, np.ndarray]:
        """Columns as numpy arrays (``pandas.DataFrame(table.to_dict())`` works too)."""
        return {c: np.asarray([r[c] for r in self.rows]) for c in self.columns}

    def to_pandas(self):
        """The table as a ``pandas.DataFrame``; ImportError when pandas is not installed."""
        try:
            import pandas as pd
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("CorrelationTable.to_pandas() needs pandas: pip install pandas") from e
        return pd.DataFrame(self.rows, columns=list(self.columns))

    def __repr__(self) -> str:
        out = []
        for l in sorted({r["layer"] for r in self.rows}):
            out.append(f"layer {l}")
            for r in self.rows:
                if r["layer"] != l:
                    continue
                conv = r["metric"] if r["metric"] != "nfa" else (
                    f"nfa  alpha={r['alpha_label']:<4s} {'centered' if r['centered'] else 'uncentered':10s}")
                out.append(f"  {conv:36s} {r['kind']:8s} {r['corr']: .6f}")
        return "\n".join(out)


def correlations(weights: Sequence[Any], x, *, activation: str = "relu", biases=None,
                 mults: Optional[Sequence[float]] = None, init_weights: Optional[Sequence[Any]] = None,
                 kinds: Sequence[str] = ("pearson", "cosine"),
                 alphas: Sequence[Any] = (0.5, 1.0, "1/L"),
                 centered: Sequence[bool] = (False, True), batch: int = 512) -> CorrelationTable:
    """The NFA correlation of every layer of a trained network under each convention in use:
    ρ(W_lᵀW_l, G_l^α) for every ``kind`` (Pearson of the flattened matrices, or cosine), every
    exponent in ``alphas`` (numbers, or ``"1/L"`` for the deep-linear theorem's 1/depth;
    Tansley, Massart & Cartis 2025) and the AGOP G_l uncentered and ``centered`` (mean
    Jacobian subtracted); plus the UC-NFC ρ(WᵀW, WᵀKW) (Beaglehole, Mitliagkas & Agarwala
    2024; K the PTK of the uncentered pass) and, with ``init_weights``, the C-NFC
    ρ(ΔWᵀΔW, ΔWᵀKΔW), ΔW = W − W₀, for every ``kind``. A centered AGOP that vanishes (norm
    ≤ 1e-12 × the uncentered one: the layer's Jacobian does not vary over the inputs, as for
    the last layer of a net with a linear output) gives NaN.

    ``weights``: W_1 … W_L as numpy/PyTorch store them (fan-out × fan-in; e.g. loaded with
    ``np.load`` from ``.npy`` files saved from ``model.state_dict()``); ``x``: the inputs
    (n × d); ``activation``, ``biases``, ``mults`` as for :func:`agop`. Returns a
    :class:`CorrelationTable` (rows in layer order)."""
    ws = _ws(weights)
    x = _m(x, "x")
    depth = len(ws)
    labelled = []
    for a in alphas:
        if isinstance(a, str):
            if a.replace(" ", "") != "1/L":
                raise ValueError(f"alphas: unknown exponent {a!r} (numbers or \"1/L\")")
            labelled.append((1.0 / depth, "1/L"))
        else:
            v = float(a)
            labelled.append((v, "1/2" if v == 0.5 else ("1" if v == 1.0 else f"{v:g}")))
    kinds = [str(k) for k in kinds]
    for k in kinds:
        if k not in ("pearson", "cosine"):
            raise ValueError(f"kinds: unknown correlation {k!r} (pearson or cosine)")
    init = None if init_weights is None else _ws(init_weights, "init_weights")
    if init is not None and [w.shape for w in init] != [w.shape for w in ws]:
        raise ValueError("shape mismatch: init_weights must have the shapes of weights")
    agops = {}
    for c in dict.fromkeys(bool(c) for c in centered):
        agops[c] = agop(ws, x, activation=activation, biases=biases, mults=mults, center=c, batch=batch)
    ptks = agops[False][1] if False in agops else agop(ws, x, activation=activation, biases=biases,
                                                        mults=mults, batch=batch)[1]
    # uncentered AGOPs, the scale against which a centered one counts as zero
    agop_scale = agops[False][0] if False in agops else agop(
        ws, x, activation=activation, biases=biases, mults=mults, batch=batch)[0]
    rows: List[Dict[str, Any]] = []
    alpha_values = [a for a, _ in labelled]
    for l, w in enumerate(ws):
        f = nfm(w)
        for c, (gs, _) in agops.items():
            # a centered AGOP that is zero but for rounding (a Jacobian that does not vary
            # over the inputs, e.g. the last layer of a net with linear output) has no
            # direction to correlate with: NaN, not the correlation of rounding noise
            vanished = c and np.linalg.norm(gs[l]) <= 1e-12 * np.linalg.norm(agop_scale[l])
            for kind in kinds:
                vals = np.full(len(alpha_values), np.nan) if vanished else np.atleast_1d(
                    nfa_correlation(f, gs[l], alpha_values, kind))
                for (a, label), v in zip(labelled, vals):
                    rows.append({"layer": l + 1, "metric": "nfa", "kind": kind, "alpha": a,
                                 "alpha_label": label, "centered": c, "corr": float(v)})
        k = ptks[l]
        for kind in kinds:
            rows.append({"layer": l + 1, "metric": "uc_nfc", "kind": kind, "alpha": float("nan"),
                         "alpha_label": "", "centered": False, "corr": correlation(f, w.T @ k @ w, kind)})
            if init is not None:
                dw = w - init[l]
                rows.append({"layer": l + 1, "metric": "c_nfc", "kind": kind, "alpha": float("nan"),
                             "alpha_label": "", "centered": False,
                             "corr": correlation(dw.T @ dw, dw.T @ k @ dw, kind)})
    return CorrelationTable(rows)
