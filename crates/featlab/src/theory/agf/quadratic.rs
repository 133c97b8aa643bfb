//! Exact utility phase for κ = 2 neurons whose utility is a quadratic form
//! U_i(θ) = ½ θᵀ K_i θ (two-layer linear nets: K = [[0, Mᵀ], [M, 0]] with M the residual
//! moment; diagonal nets: K_i = [[0, m_i], [m_i, 0]]).
//!
//! For κ = 2 the AGF utility ODE dθ̄/dt = ∇U(θ̄) − 2Ūθ̄, dS/dt = 2Ū (Kunin et al. 2025,
//! §2.2–2.3) is the polar form of the linear flow dθ/dt = K θ with θ = e^{S} θ̄, so over a
//! phase that starts at t0 with direction θ̄0 and accumulated utility S0:
//!     θ(t0 + Δ) = e^{KΔ} θ̄0,   S(t0 + Δ) = S0 + ½ log Σ_k z_k² e^{2λ_k Δ},
//! with K = V diag(λ) Vᵀ and z = Vᵀθ̄0. The crossing S = c solves a convex scalar equation
//! (a log-sum-exp of linear functions), found by Brent's method; no ODE steps.

use super::roots::brent;
use crate::linalg::sym_eig;
use crate::Result;
use faer::Mat;

/// One dormant neuron's phase in eigen-coordinates of its K.
pub(super) struct QuadraticNeuron {
    /// Eigenvectors of K (columns).
    v: Mat<f64>,
    /// Eigenvalues of K.
    lambda: Vec<f64>,
    /// z = Vᵀ θ̄0.
    z: Vec<f64>,
    /// S at the start of the phase.
    s0: f64,
}

impl QuadraticNeuron {
    /// Decompose K (symmetric) for a neuron starting at unit direction `dir` with
    /// accumulated utility `s0`.
    pub(super) fn new(k: &Mat<f64>, dir: &[f64], s0: f64) -> Result<Self> {
        let (v, lambda) = sym_eig(k.as_ref())?;
        let z = (0..lambda.len())
            .map(|a| (0..dir.len()).map(|j| v[(j, a)] * dir[j]).sum())
            .collect();
        Ok(QuadraticNeuron { v, lambda, z, s0 })
    }

    /// max_k (λ_k Δ) over the components present, and the log-norm
    /// ½ log Σ z_k² e^{2λ_kΔ} (stable log-sum-exp).
    fn log_norm(&self, delta: f64) -> f64 {
        let m = self
            .lambda
            .iter()
            .zip(&self.z)
            .filter(|(_, z)| **z != 0.0)
            .map(|(l, _)| l * delta)
            .fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = self
            .lambda
            .iter()
            .zip(&self.z)
            .filter(|(_, z)| **z != 0.0)
            .map(|(l, z)| z * z * (2.0 * (l * delta - m)).exp())
            .sum();
        m + 0.5 * sum.ln()
    }

    /// Accumulated utility S(t0 + Δ).
    pub(super) fn s_at(&self, delta: f64) -> f64 {
        self.s0 + self.log_norm(delta)
    }

    /// Unit direction θ̄(t0 + Δ) into `out`.
    pub(super) fn direction_at(&self, delta: f64, out: &mut [f64]) {
        let m = self
            .lambda
            .iter()
            .zip(&self.z)
            .filter(|(_, z)| **z != 0.0)
            .map(|(l, _)| l * delta)
            .fold(f64::NEG_INFINITY, f64::max);
        out.fill(0.0);
        for (a, (l, z)) in self.lambda.iter().zip(&self.z).enumerate() {
            if *z == 0.0 {
                continue;
            }
            let w = z * (l * delta - m).exp();
            for (j, o) in out.iter_mut().enumerate() {
                *o += self.v[(j, a)] * w;
            }
        }
        let nrm = out.iter().map(|x| x * x).sum::<f64>().sqrt();
        for o in out.iter_mut() {
            *o /= nrm;
        }
    }

    /// Time Δ > 0 after the phase start at which S reaches `c`, or None when it never does
    /// (every component present has λ_k ≤ 0: the norm never grows past its start).
    /// Also returns the number of evaluations of S spent.
    pub(super) fn crossing(&self, c: f64) -> Result<(Option<f64>, u64)> {
        let gap = c - self.s0;
        let lmax = self
            .lambda
            .iter()
            .zip(&self.z)
            .filter(|(_, z)| **z != 0.0)
            .map(|(l, _)| *l)
            .fold(f64::NEG_INFINITY, f64::max);
        if lmax.is_nan() || lmax <= 0.0 {
            return Ok((None, 0));
        }
        // S − c is convex in Δ and → +∞. Usually negative at 0 (S0 < c); a neuron sent
        // back to the dormant set at its threshold (S0 = c) crosses upward later when its
        // utility is negative first (its norm shrinks, then regrows), at once otherwise.
        let mut evals = 0u64;
        let mut lo = 0.0;
        if gap <= 0.0 {
            let z2: f64 = self.z.iter().map(|z| z * z).sum();
            let slope: f64 = self
                .lambda
                .iter()
                .zip(&self.z)
                .map(|(l, z)| l * z * z)
                .sum::<f64>()
                / z2;
            if slope >= 0.0 {
                return Ok((Some(0.0), 0));
            }
            lo = 1e-6 / slope.abs();
            while self.log_norm(lo) >= gap {
                evals += 1;
                lo *= 2.0;
                if !lo.is_finite() || lo * lmax > 1e3 {
                    return Ok((Some(0.0), evals));
                }
            }
        }
        let mut hi = (lo * 2.0).max(gap.max(0.0) / lmax).max(f64::MIN_POSITIVE);
        while self.log_norm(hi) < gap {
            evals += 1;
            hi *= 2.0;
            if !hi.is_finite() {
                return Ok((None, evals));
            }
        }
        let mut count = 0u64;
        let root = brent(
            |d| {
                count += 1;
                self.log_norm(d) - gap
            },
            lo,
            hi,
            1e-15 * hi,
        )?;
        Ok((Some(root), evals + count))
    }
}
