//! Finite groups, their irreducible representations and the group Fourier transform, for
//! the group-composition study of Marchetti, Kunin, Myers, Acosta, Miolane, *Sequential
//! group composition* (arXiv 2602.03655, ICML 2026).
//!
//! * [`group`]: a finite group as a validated multiplication table (identity, inverses,
//!   associativity checked), built from a table or by closure of generators (BFS).
//! * [`families`]: cyclic C_n, products G × H, dihedral D_n, the octahedral rotation group
//!   (order 24, from 3×3 rotation matrices) and the icosahedral rotation group A₅ (order
//!   60, from permutations), each with a naming rule for its irreps.
//! * [`classes`]: conjugacy classes.
//! * [`irreps`]: complex and real irreducible representations computed numerically (the
//!   regular representation split by a random Hermitian element of the centre of the group
//!   algebra, then one irreducible copy cut out by a random Hermitian element of the right
//!   action; an orthonormal basis of an invariant subspace gives unitary matrices).
//! * [`fourier`]: x̂(ρ) = Σ_g x(g) ρ(g)^H, its inverse, per-irrep power
//!   P(ρ) = (d_ρ/|G|)‖x̂(ρ)‖²_F with Σ_ρ P(ρ) = ‖x‖² (Plancherel), the real version, and
//!   templates with prescribed power per irrep.

pub mod classes;
pub mod families;
pub mod fourier;
pub mod group;
pub mod irreps;
pub mod spec;
#[cfg(test)]
mod tests;

pub use families::{cyclic, dihedral, icosahedral, octahedral, product};
pub use fourier::{
    complex_fourier, complex_inverse_fourier, complex_power_spectrum, real_fourier,
    real_inverse_fourier, real_power_spectrum, template_from_powers,
};
pub use group::{Family, FiniteGroup};
pub use irreps::{ComplexIrrep, IrrepKind, Irreps, RealIrrep};
pub use spec::GroupSpec;
