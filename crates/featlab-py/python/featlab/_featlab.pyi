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
