"""Type stubs of the native module featlab._featlab (the user API is in featlab/__init__.py)."""

from typing import Any, Dict, List, Optional, Tuple

import numpy as np

__version__: str

class DivergenceError(RuntimeError):
    """Training produced a non-finite loss or parameter; the message names the step,
    the time t and a hint (usually: lower the learning rate)."""

def run(
    config: Any,
    overrides: Optional[Dict[str, Any]] = None,
    out: Optional[str] = None,
    seed: Optional[int] = None,
    threads: int = 1,
    png: bool = True,
    progress: Any = None,
) -> Dict[str, Any]:
    """Resolve and run a config like `featlab run`; returns {"run_json": str,
    "trajectory": {col: 1-D float64}, "arrays": {relpath: ndarray},
    "tables": {name: {col: 1-D float64}}, "out": str | None}."""

def load_run(dir: str) -> Dict[str, Any]:
    """Read a run directory into the dict `run` returns."""

def presets() -> List[Tuple[str, str]]: ...
def show(name: str) -> str: ...
def toml_to_json(text: str, origin: str) -> str: ...

class exact_linear_1d:  # native submodule; use featlab.exact_linear_1d
    @staticmethod
    def solve(x: np.ndarray, y: np.ndarray, u0: np.ndarray, w0: np.ndarray, t: np.ndarray,
              gamma: float, lr_u: float, lr_w: float, vectors: bool) -> Dict[str, Any]: ...
    @staticmethod
    def order_parameters(x: np.ndarray, y: np.ndarray, u0: np.ndarray, w0: np.ndarray,
                         gamma: float, lr_u: float, lr_w: float) -> Dict[str, float]: ...
    @staticmethod
    def phase_cells(*args: Any) -> Dict[str, np.ndarray]: ...

class nfa:  # native submodule; use featlab.nfa
    @staticmethod
    def agop(*args: Any) -> Tuple[List[np.ndarray], List[np.ndarray]]: ...
    @staticmethod
    def measure(*args: Any) -> Dict[str, Any]: ...
    @staticmethod
    def nfm(w: np.ndarray) -> np.ndarray: ...
    @staticmethod
    def correlation(a: np.ndarray, b: np.ndarray, kind: str) -> float: ...
    @staticmethod
    def nfa_correlation(nfm: np.ndarray, agop: np.ndarray, alphas: List[float], kind: str) -> List[float]: ...
    @staticmethod
    def alpha_fit(nfm: np.ndarray, agop: np.ndarray, lo: float, hi: float, kind: str) -> Tuple[float, float, float]: ...

class agf:  # native submodule; use featlab.agf
    """Alternating Gradient Flows (Kunin et al. 2025) on numpy data: utility maximisation
    dθ̄_i/dt = ρ_i^{κ−2}(∇U_i − κŪ_iθ̄_i), dS_i/dt = κŪ_i with U_i(θ) = (1/n)Σ_n⟨f_i(x_n; θ), r_n⟩,
    activation when S_i reaches c_i (log(1/ρ0_i) for κ = 2, ρ0_i^{2−κ}/(κ−2) for κ > 2), then
    cost minimisation of C = (1/2n)Σ_n‖y_n − f_active(x_n)‖²."""
    @staticmethod
    def run(
        model: str,
        x: np.ndarray,
        y: np.ndarray,
        width: Optional[int] = None,
        context: Optional[int] = None,
        alpha: Optional[float] = None,
        seed: int = 0,
        init: Any = None,
        cost: str = "auto",
        options: Optional[Dict[str, Any]] = None,
        cost_options: Optional[Dict[str, Any]] = None,
        threads: int = 1,
        progress: Any = None,
    ) -> Dict[str, Any]:
        """AGF on (x [n, d], y [n, c]); returns {"jump_times": (R,), "levels": (R+1,),
        "feature": (R,) int, "feature_kind": str, "activated"/"near_ties"/"deactivated"/
        "active": list[list[int]], "directions": list[(k, p_i)], "params": (R, P),
        "params_init"/"params_final": {block: ndarray}, "init": (P,), "beta": (R, d)
        (diagonal), "init_norms"/"thresholds"/"final_utility": (H,), "trace_t": (K,),
        "trace_norms": (K, H), "stop": str, "options_json": str, ...}."""
    @staticmethod
    def modular_data(template: Any, p: Optional[int] = None, seed: int = 0) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x [p², 2p], y [p², p], template [p]) of template modular addition."""
    @staticmethod
    def attention_data(eigenvalues: List[float], context: int, seed: int = 0,
                       trace: Optional[float] = None, samples: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x [n, N(D+1)+D], y [n, 1], Σ [D, D]) of in-context linear regression."""

class groups:  # native submodule; use featlab.groups
    """Finite groups and their irreps (featlab::groups)."""
    class NativeGroup:
        name: str
        order: int
        identity: int
        def table(self) -> np.ndarray: ...
        def inverse(self) -> np.ndarray: ...
        def left_translate(self, g: int, x: np.ndarray) -> np.ndarray: ...
        def real_irreps(self) -> List[Dict[str, Any]]: ...
        def complex_irreps(self) -> List[Dict[str, Any]]: ...
        def fourier(self, x: np.ndarray, real: bool) -> List[np.ndarray]: ...
        def inverse_fourier(self, xhat: List[np.ndarray], real: bool) -> np.ndarray: ...
        def power_spectrum(self, x: np.ndarray, real: bool) -> np.ndarray: ...
        def template(self, powers: List[float]) -> np.ndarray: ...
    @staticmethod
    def group(spec_json: str) -> "groups.NativeGroup":
        """Build a group from the JSON of a `data.group` spec and compute its irreps."""
