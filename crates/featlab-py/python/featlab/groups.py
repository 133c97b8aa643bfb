"""Finite groups, their irreducible representations and the group Fourier transform, as
numpy arrays — featlab's ``groups`` module (the code behind the ``group-agf-*`` and
``group-rnn-*`` presets; Marchetti, Kunin, Myers, Acosta, Miolane, *Sequential group
composition*, arXiv 2602.03655), not a re-implementation.

>>> from featlab import groups
>>> G = groups.dihedral(5)                      # D5, order 10
>>> [r.name for r in G.real_irreps]             # ['1', "1'", '2_1', '2_2']
>>> G.real_irreps[2].matrices.shape             # (10, 2, 2): σ(g) for every g
>>> x = G.template({"1'": 3000, "2_1": 2000, "2_2": 1000})
>>> G.power_spectrum(x)                         # {'1': 0.0, "1'": 3000.0, '2_1': 2000.0, ...}

Conventions (as in ``featlab::groups`` and docs/group-agf.md):

* elements are ``0 … |G|−1``; ``G.table[a, b]`` is the index of ``a·b``;
* complex irreps ρ are unitary, real irreps σ orthogonal; a real irrep merges a conjugate
  pair of complex irreps (``kind="complex"``, dimension 2d) or realifies a quaternionic one
  (``kind="quaternionic"``); ``schur_index`` e_σ = 1, 2, 4;
* Fourier transform x̂(ρ) = Σ_g x(g) ρ(g)^H, inverse x(g) = (1/|G|) Σ_ρ d_ρ Tr(ρ(g) x̂(ρ));
  real: x̂(σ) = Σ_g x(g) σ(g)ᵀ, x(g) = Σ_σ (r/(e_σ|G|)) Tr(σ(g) x̂(σ));
* power P(ρ) = (d_ρ/|G|) ‖x̂(ρ)‖²_F, real P(σ) = (r/(e_σ|G|)) ‖x̂(σ)‖²_F = ‖π_σ x‖²;
  Σ P = ‖x‖² (Plancherel) in both.
"""

from __future__ import annotations

import json
from typing import Dict, List, Mapping, NamedTuple, Sequence, Union

import numpy as np

from ._featlab import groups as _native

__all__ = [
    "Group",
    "RealIrrep",
    "ComplexIrrep",
    "group",
    "cyclic",
    "product",
    "dihedral",
    "octahedral",
    "icosahedral",
    "from_permutations",
    "from_table",
]


class RealIrrep(NamedTuple):
    """An orthogonal real irrep σ: ``matrices[g]`` = σ(g) (r × r), ``character[g]`` = Tr σ(g)."""

    name: str
    dim: int
    kind: str
    schur_index: float
    matrices: np.ndarray
    character: np.ndarray
    complex: List[int]


class ComplexIrrep(NamedTuple):
    """A unitary complex irrep ρ: ``matrices[g]`` = ρ(g) (d × d, complex128); ``indicator``
    is the Frobenius–Schur indicator (1 real, 0 complex, −1 quaternionic type)."""

    name: str
    dim: int
    indicator: int
    matrices: np.ndarray
    character: np.ndarray


def _vector(x, n: int, what: str = "x") -> np.ndarray:
    v = np.ascontiguousarray(np.asarray(x, dtype=np.float64))
    if v.ndim != 1:
        raise ValueError(f"shape mismatch: {what} must be a 1-D signal on the group, got shape {v.shape}")
    return v


class Group:
    """A finite group with its irreps, built by :func:`group` or the family functions.

    Attributes
    ----------
    name : str
    order : int
        |G|.
    identity : int
    table : ndarray (|G|, |G|) of int64
        ``table[a, b]`` = a·b.
    inverse : ndarray (|G|,) of int64
    real_irreps : list of RealIrrep
        Trivial first, then by dimension and name (the names the presets use in
        ``data.powers``).
    complex_irreps : list of ComplexIrrep
    """

    def __init__(self, native):
        self._g = native
        self.name: str = native.name
        self.order: int = native.order
        self.identity: int = native.identity
        self.table: np.ndarray = native.table()
        self.inverse: np.ndarray = native.inverse()
        self.real_irreps: List[RealIrrep] = [RealIrrep(**d) for d in native.real_irreps()]
        self.complex_irreps: List[ComplexIrrep] = [ComplexIrrep(**d) for d in native.complex_irreps()]

    @property
    def real_names(self) -> List[str]:
        return [r.name for r in self.real_irreps]

    @property
    def complex_names(self) -> List[str]:
        return [r.name for r in self.complex_irreps]

    def translate(self, g: int, x) -> np.ndarray:
        """(λ(g)x)(h) = x(g⁻¹h): the encoding of element ``g`` by the template ``x``."""
        return self._g.left_translate(int(g), _vector(x, self.order))

    def fourier(self, x, real: bool = True) -> List[np.ndarray]:
        """Fourier coefficients of the signal ``x`` (length |G|), one matrix per irrep in
        :attr:`real_irreps` (``real=True``, float64) or :attr:`complex_irreps` (complex128)."""
        return self._g.fourier(_vector(x, self.order), bool(real))

    def inverse_fourier(self, xhat: Sequence, real: bool = True) -> np.ndarray:
        """The signal with coefficients ``xhat`` (one matrix per irrep, as :meth:`fourier`
        returns them): float64 for real irreps, complex128 for complex ones."""
        dtype = np.float64 if real else np.complex128
        mats = [np.ascontiguousarray(np.asarray(m, dtype=dtype)) for m in xhat]
        return self._g.inverse_fourier(mats, bool(real))

    def power_spectrum(self, x, real: bool = True) -> Dict[str, float]:
        """Power of ``x`` per irrep, by name: P(σ) = ‖π_σ x‖² (real) or
        P(ρ) = (d_ρ/|G|)‖x̂(ρ)‖²_F (complex). The values sum to ‖x‖² (Plancherel)."""
        p = self._g.power_spectrum(_vector(x, self.order), bool(real))
        names = self.real_names if real else self.complex_names
        return dict(zip(names, p.tolist()))

    def template(self, powers: Union[Mapping[str, float], Sequence[float]]) -> np.ndarray:
        """The template with the given power per **real** irrep (a dict by name, unnamed
        irreps 0, or one value per real irrep) and Fourier coefficients multiples of the
        identity — what the ``group-agf-*`` presets train on."""
        if isinstance(powers, Mapping):
            unknown = [k for k in powers if k not in self.real_names]
            if unknown:
                raise ValueError(
                    f"invalid configuration at `powers.{unknown[0]}`: {self.name} has no real "
                    f"irrep `{unknown[0]}`; its real irreps: {', '.join(self.real_names)}"
                )
            powers = [float(powers.get(n, 0.0)) for n in self.real_names]
        return self._g.template([float(p) for p in powers])

    def __repr__(self) -> str:
        dims = [r.dim for r in self.complex_irreps]
        return f"<featlab.groups.Group {self.name} order={self.order} complex irrep dims={dims}>"


def group(spec: Mapping) -> Group:
    """A group from a ``data.group`` spec as the presets write it: ``{"kind": "cyclic",
    "n": 11}``, ``{"kind": "product", "n": 5, "m": 5}``, ``{"kind": "dihedral", "n": 5}``,
    ``{"kind": "octahedral"}``, ``{"kind": "icosahedral"}``, ``{"kind": "permutations",
    "generators": [[1, 2, 3, 0], [1, 0, 2, 3]]}``, ``{"kind": "table", "table": [[0, 1],
    [1, 0]]}``. Raises ValueError for an invalid spec or group (the message says why)."""
    return Group(_native.group(json.dumps(dict(spec))))


def cyclic(n: int) -> Group:
    """C_n (element a = rotation by a)."""
    return group({"kind": "cyclic", "n": int(n)})


def product(n: int, m: int) -> Group:
    """C_n × C_m (element (a, b) = a·m + b)."""
    return group({"kind": "product", "n": int(n), "m": int(m)})


def dihedral(n: int) -> Group:
    """D_n of order 2n (element r^a s^b = a + n·b)."""
    return group({"kind": "dihedral", "n": int(n)})


def octahedral() -> Group:
    """The rotation group of the cube (order 24, ≅ S₄)."""
    return group({"kind": "octahedral"})


def icosahedral() -> Group:
    """The rotation group of the icosahedron (order 60, ≅ A₅)."""
    return group({"kind": "icosahedral"})


def from_permutations(generators: Sequence[Sequence[int]]) -> Group:
    """The group generated by permutations of 0..m−1 (composition (p∘q)(j) = p(q(j)))."""
    gens = [[int(j) for j in g] for g in generators]
    return group({"kind": "permutations", "generators": gens})


def from_table(table) -> Group:
    """A group from its multiplication table (``table[a][b]`` = a·b), validated."""
    t = np.asarray(table)
    if t.ndim != 2 or not np.issubdtype(t.dtype, np.integer):
        raise ValueError("invalid configuration at `group.table`: a 2-D table of integers is needed")
    return group({"kind": "table", "table": t.tolist()})
