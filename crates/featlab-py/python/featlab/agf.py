"""Alternating Gradient Flows on numpy data (Kunin, Marchetti, Chen, Karkada, Simon,
DeWeese, Ganguli, Miolane, *Alternating Gradient Flows: A Theory of Feature Learning in
Two-layer Neural Networks*, NeurIPS 2025, arXiv 2506.06489). Rust: ``featlab::theory::agf``
(see ``docs/agf.md``).

AGF describes gradient flow from a small initialisation (scale α → 0) as a staircase: long
plateaus during which *dormant* neurons only turn, and sudden jumps when one of them
becomes *active* and the active set is refitted. For a network ``f = Σ_i f_i(x; θ_i)`` whose
neurons are homogeneous of degree κ (``f_i(x; λθ) = λ^κ f_i(x; θ)``), with the loss
``L = (1/2n) Σ_n ‖f(x_n) − y_n‖²`` and the residual ``r = y − f_active``:

* utility ``U_i(θ) = (1/n) Σ_n ⟨f_i(x_n; θ), r_n⟩``, normalised ``Ū_i = U_i(θ̄_i)`` at the
  unit direction ``θ̄_i``;
* utility maximisation (dormant neurons, on the sphere):
  ``dθ̄_i/dt = ρ_i^{κ−2} (∇U_i(θ̄_i) − κ Ū_i θ̄_i)``, ``dS_i/dt = κ Ū_i``;
* neuron ``i`` activates when its accumulated utility ``S_i`` reaches the threshold
  ``c_i = log(1/ρ0_i)`` (κ = 2) or ``ρ0_i^{2−κ}/(κ−2)`` (κ > 2), ``ρ0_i = ‖θ_i(0)‖``;
* cost minimisation: the active neurons minimise ``C = (1/2n) Σ_n ‖y_n − f_active(x_n)‖²``
  (closed-form least squares for diagonal and linear nets, else gradient flow); the loss
  there is the next plateau level ``ℓ^(k)``.

Time is gradient-flow time of ``L`` with unit learning rate, the ``t`` of
:func:`featlab.run`'s trajectories, so AGF's jump times compare directly with the drops of
gradient flow from the same initialisation.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ._featlab import agf as _native

__all__ = ["run", "AgfRun", "MODELS", "staircase", "modular_data", "attention_data"]

#: Supported architectures: name → (network, κ, preset whose solver defaults and α are used).
MODELS: Dict[str, Tuple[str, int, str]] = {
    "diagonal": ("β = u ⊙ v, f(x) = βᵀx; neuron i = (u_i, v_i)", 2, "agf-diagonal"),
    "linear": ("f(x) = A W x; neuron i = (row i of W, column i of A)", 2, "agf-linear"),
    "relu": ("f(x) = A ReLU(W x), no biases", 2, "agf-relu"),
    "quadratic": ("f(x) = A (W x)², no biases", 3, "agf-modular"),
    "modular": ("quadratic net on modular-addition data (modular_data)", 3, "agf-modular"),
    "attention": ("ŷ = Σ_h v_h (sᵀk_h)(x_qᵀq_h), s = Σ_n y_n x_n", 3, "agf-attention"),
}


class AgfRun:
    """The result of :func:`run`. With R rounds (jumps), H neurons and P parameters:

    Attributes
    ----------
    jump_times : ndarray (R,)
        Jump times ``t^(1) < t^(2) < …`` (gradient-flow time).
    levels : ndarray (R + 1,)
        Plateau losses ``ℓ^(0) = (1/2n) Σ ‖y‖²`` (all neurons dormant), then the loss after
        each round's cost minimisation.
    feature : ndarray of int (R,)
        What was learned in each round, of kind ``feature_kind``: ``"coordinate"``
        (diagonal: the coordinate i that activated), ``"mode"`` (linear: the singular mode
        of ``M = Σ_yx Σ_xx⁻¹ Σ_xy``, 0 = largest, whose energy grew most), ``"frequency"``
        (modular: dominant Fourier frequency k ≥ 1 of the activated neuron),
        ``"principal_component"`` (attention: 1-based index, decreasing eigenvalue, of the
        PC of the query covariance best aligned with the head's key and query, as the
        ``agf-attention`` preset reports it), ``"neuron"`` (relu/quadratic: the activated
        neuron; its direction is in ``directions``).
    activated, near_ties, deactivated, active : list of list of int
        Per round: neurons that activated (more than one only for exact ties), dormant
        neurons within ``near_tie_rtol`` of their threshold at the jump, neurons sent back
        to the dormant set by the cost phase, and the active set afterwards.
    directions : list of ndarray
        Per round, the unit directions ``θ̄_i`` (one row per activated neuron) at activation:
        the learned feature (diagonal: (u_i, v_i); two-layer: (W_i·, A_·i); attention:
        (v_h, k_h, q_h)).
    params : ndarray (R, P)
        All parameters after each round's cost phase (dormant neurons zero).
    params_init, params_final : dict[str, ndarray]
        Initialisation and last round's parameters by block (``u``, ``v``; ``W1``, ``W2``;
        ``v``, ``K``, ``Q``), as :attr:`featlab.Run.params_init`.
    init : ndarray (P,)
        The flat initialisation.
    beta : ndarray (R, d)
        Diagonal nets only: ``β = u ⊙ v`` after each round.
    init_norms, thresholds, final_utility : ndarray (H,)
        ``ρ0_i``, ``c_i`` and the accumulated utilities ``S_i`` at the end.
    trace_t, trace_norms : ndarray (K,), (K, H)
        Neuron norms along the run (closed-form ``ρ0 e^{S}`` / ``(ρ0^{2−κ} − (κ−2)S)^{−1/(κ−2)}``
        for dormant neurons, actual norms for active ones) at every utility step and jump.
    stop : str
        Why AGF stopped: ``no_dormant``, ``loss_tolerance``, ``stationary``, ``horizon``,
        ``max_rounds``.
    kappa, alpha, seed, model, initial_loss, cost_minimizer, seconds
        κ; α (``None`` with an explicit ``init``); the init seed; the architecture; ``ℓ^(0)``;
        the cost phase used; wall time of the call.
    utility_steps, utility_evals, cost_work : ndarray of int (R,); cost_converged : ndarray of bool
        Solver work per round.
    cost_stop : list of str (R,)
        Why each round's cost phase ended: ``gradient`` (‖∇C‖ ≤ gtol: a stationary point),
        ``level`` (the level converged over a doubling of time, ``cost_options["level_rtol"]``,
        while ‖∇C‖ was still above gtol: no minimiser within reach), ``budget`` (t_max or
        max_steps hit: not converged) or ``closed_form``.
    cost_grad_norm, cost_level_change, cost_time : ndarray (R,)
        ‖∇_{Θ_A} C‖ at the end of the cost phase, its last relative level decrease
        (C(t/2) − C(t))/C(t), and the time it ran for; NaN where they do not apply (closed
        forms; ``cost_level_change`` unless the level test ran twice).
    options, cost_options : dict
        The AGF and cost-phase options actually used (preset defaults + yours).
    """

    jump_times: np.ndarray
    levels: np.ndarray
    feature: np.ndarray
    feature_kind: str
    activated: List[List[int]]
    near_ties: List[List[int]]
    deactivated: List[List[int]]
    active: List[List[int]]
    directions: List[np.ndarray]
    params: np.ndarray
    params_init: Dict[str, np.ndarray]
    params_final: Dict[str, np.ndarray]
    init: np.ndarray
    beta: Optional[np.ndarray]
    init_norms: np.ndarray
    thresholds: np.ndarray
    final_utility: np.ndarray
    trace_t: np.ndarray
    trace_norms: np.ndarray
    stop: str
    kappa: int
    alpha: Optional[float]
    seed: int
    model: str
    initial_loss: float
    cost_minimizer: str
    seconds: float
    utility_steps: np.ndarray
    utility_evals: np.ndarray
    cost_work: np.ndarray
    cost_converged: np.ndarray
    cost_stop: List[str]
    cost_grad_norm: np.ndarray
    cost_level_change: np.ndarray
    cost_time: np.ndarray
    options: Dict[str, Any]
    cost_options: Dict[str, Any]

    def __init__(self, raw: Mapping[str, Any]):
        raw = dict(raw)
        opts = json.loads(raw.pop("options_json"))
        self.options = opts["options"]
        self.cost_options = opts["cost_options"]
        self.beta = raw.pop("beta", None)
        for k, v in raw.items():
            setattr(self, k, v)

    @property
    def rounds(self) -> int:
        """Number of jumps R."""
        return len(self.jump_times)

    def loss_at(self, t) -> np.ndarray:
        """The AGF loss staircase at times ``t``: ``ℓ^(k)`` for ``t^(k) ≤ t < t^(k+1)``."""
        return staircase(self.jump_times, self.levels, t)

    def __repr__(self) -> str:
        return (
            f"<featlab.agf.AgfRun model={self.model!r} κ={self.kappa} α={self.alpha} "
            f"rounds={self.rounds} stop={self.stop!r} {self.feature_kind}={self.feature.tolist()}>"
        )


def staircase(jump_times, levels, t) -> np.ndarray:
    """Piecewise-constant loss ``ℓ(t) = ℓ^(k)`` for ``t^(k) ≤ t < t^(k+1)`` (``t^(0) = 0``),
    with ``levels = [ℓ^(0), …, ℓ^(R)]`` and ``jump_times = [t^(1), …, t^(R)]``."""
    jt = np.asarray(jump_times, dtype=np.float64)
    lv = np.asarray(levels, dtype=np.float64)
    if lv.shape != (jt.size + 1,):
        raise ValueError(
            f"shape mismatch: {jt.size} jump times need {jt.size + 1} levels, got {lv.size}"
        )
    return lv[np.searchsorted(jt, np.asarray(t, dtype=np.float64), side="right")]


def _matrix(a, name: str, column: bool = False) -> np.ndarray:
    m = np.asarray(a, dtype=np.float64)
    if column and m.ndim == 1:
        m = m.reshape(-1, 1)
    if m.ndim != 2:
        raise ValueError(f"shape mismatch: {name} must be 2-D (n × …), got shape {m.shape}")
    return np.ascontiguousarray(m)


def run(
    model: str,
    x,
    y,
    *,
    width: Optional[int] = None,
    context: Optional[int] = None,
    alpha: Optional[float] = None,
    seed: int = 0,
    init: Union[None, Mapping[str, Any], Sequence[float], np.ndarray] = None,
    rtol: Optional[float] = None,
    atol: Optional[float] = None,
    t_max: Optional[float] = None,
    max_rounds: Optional[int] = None,
    cost: str = "auto",
    options: Optional[Mapping[str, Any]] = None,
    cost_options: Optional[Mapping[str, Any]] = None,
    threads: int = 1,
    progress: Any = False,
) -> AgfRun:
    """Run AGF (Algorithm 1 of Kunin et al. 2025) on the training set ``(x, y)``.

    Parameters
    ----------
    model
        ``"diagonal"``, ``"linear"``, ``"relu"``, ``"quadratic"``, ``"modular"`` or
        ``"attention"`` (see :data:`MODELS`). Two-layer nets have no biases.
    x, y
        Inputs (n × d) and targets (n × c, or a length-n vector for one output), float64.
        Attention: one sequence per row ``[x_1, y_1, …, x_N, y_N, x_query]`` (N(D+1) + D
        columns; :func:`attention_data`), target ``y_query``. Modular: :func:`modular_data`.
    width
        Number of neurons (two-layer nets) or heads (attention); not for diagonal nets
        (one neuron per coordinate).
    context
        Attention only: the context length N.
    alpha
        Initialisation scale α (default: the preset's — 1e-12 for diagonal/linear/relu,
        1e-2 for quadratic/modular, 1e-3 for attention). The initialisation is the preset's:
        diagonal ``(u, v) = (√2 α, 0)``; linear/relu ``W ~ N(0, α²/d)``, ``A ~ N(0, α²/c)``;
        quadratic/modular the same (drawn as the modular preset draws it); attention
        ``v_h = α|g|``, ``k_h, q_h = α g``, g standard normal — all from ``seed``.
    seed
        Seed of the initialisation (featlab's ``stream(seed, "init")``, as the presets).
    init
        Instead of ``alpha``/``seed``: an explicit initialisation, a dict of blocks (e.g.
        ``featlab.run(...).params_init``) or the flat parameter vector. Every neuron needs
        ``0 < ‖θ_i(0)‖ < 1``.
    rtol, atol, t_max, max_rounds
        Utility-ODE tolerances (DOPRI5), horizon and round limit; shortcuts for ``options``.
    cost
        ``"auto"`` (closed-form least squares for diagonal and linear nets, gradient flow
        otherwise, as the presets) or ``"gradient_flow"``.
    options
        Any ``featlab::theory::agf::AgfOptions`` field (``rtol``, ``atol``, ``t_max``,
        ``max_rounds``, ``threshold`` = ``"blow_up"``/``"unit_norm"``, ``tie_rtol``,
        ``near_tie_rtol``, ``collapse_tol``, ``loss_rtol``, ``stationary_tol``,
        ``max_steps``, ``fixed_dt``); defaults are the preset's ``[agf]`` table.
    cost_options
        Gradient-flow cost phase (``rtol``, ``atol``, ``gtol``, ``t_max``, ``max_steps``,
        ``fixed_dt``); defaults are the preset's ``[agf.flow_cost]``/``[cost]`` table.
    threads
        Threads for the matrix products (results do not depend on it).
    progress
        As for :func:`featlab.run`: ``True`` for a bar (one step per round), or a sink.

    Runs with the GIL released; Ctrl-C stops it between two ODE steps
    (``KeyboardInterrupt``). Bad input raises ``ValueError`` naming the argument or key.
    """
    from . import _progress_sink

    if not isinstance(model, str):
        raise TypeError(f"featlab.agf.run: model must be a str, got a `{type(model).__name__}`")
    xm = _matrix(x, "x")
    ym = _matrix(y, "y", column=True)
    opts: Dict[str, Any] = dict(options or {})
    for k, v in (("rtol", rtol), ("atol", atol), ("t_max", t_max), ("max_rounds", max_rounds)):
        if v is not None:
            opts[k] = v
    if init is not None and not isinstance(init, Mapping):
        init = np.asarray(init, dtype=np.float64)
    elif isinstance(init, Mapping) and not isinstance(init, dict):
        init = dict(init)
    raw = _native.run(
        model,
        xm,
        ym,
        None if width is None else int(width),
        None if context is None else int(context),
        None if alpha is None else float(alpha),
        int(seed),
        init,
        cost,
        opts,
        dict(cost_options or {}),
        int(threads),
        _progress_sink(progress),
    )
    return AgfRun(raw)


def modular_data(template, p: Optional[int] = None, seed: int = 0) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Template modular addition (AGF §3.4): all p² pairs (a, b), input ``(a·t, b·t)``
    (p² × 2p, ``a·t`` the cyclic shift of the template t by a), target ``((a+b) mod p)·t``
    (p² × p). ``template`` is a length-p vector, or a dict as the ``agf-modular`` preset's
    ``template`` (``{"kind": "fourier", "frequencies": [1, 3, 5], "magnitudes": [10, 5,
    2.5]}``, ``{"kind": "one_hot"}``, ``{"kind": "gaussian", "scale": 1}``) built for modulus
    ``p`` (mean-centred; random ones from ``seed``). Returns ``(x, y, template)``."""
    if not isinstance(template, dict):
        if isinstance(template, Mapping):
            template = dict(template)
        else:
            template = [float(v) for v in np.asarray(template, dtype=np.float64).ravel()]
    return _native.modular_data(template, p, int(seed))


def attention_data(eigenvalues: Sequence[float], context: int, seed: int = 0,
                   trace: Optional[float] = None,
                   samples: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """In-context linear regression (AGF §3.3) as the ``agf-attention`` preset builds it:
    ``Σ = Q diag(λ) Qᵀ`` (Q random orthogonal from ``seed``; λ rescaled to sum to ``trace``
    when given), tokens ``x ~ N(0, Σ)``, task ``w ~ N(0, I)``, ``y = wᵀx``. ``samples=None``
    gives the D² + 1 moment-matched sequences whose ½-MSE *is* the population loss
    ``½ E[(ŷ − y_query)²]``; otherwise ``samples`` i.i.d. sequences. Returns ``(x, y, Σ)``."""
    return _native.attention_data([float(v) for v in eigenvalues], int(context), int(seed),
                                  None if trace is None else float(trace),
                                  None if samples is None else int(samples))
