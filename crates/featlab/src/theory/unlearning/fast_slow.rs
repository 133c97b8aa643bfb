//! Fast–slow (singular-perturbation, Tikhonov–Fenichel) analysis of the limit system
//! `dm/dt = F(m, a)`, `da/dt = ε G(m, a)` of [`LimitModel`] — featlab's own derivation.
//!
//! * Critical manifold `M0 = {F = 0}`: the boundary branches `m = ±1` and the interior
//!   branch `Φ(m, a) = 0`, which is linear in a and so is the graph
//!   `a = A(m) = Σ_k k c_k c*_k m^{k−1} / Σ_k k c_k² m^{2k−1}`.
//!   A branch is attracting where `∂F/∂m < 0`.
//! * Reduced slow flow on an attracting branch `m = h(a)`: `da/dt = ε G(h(a), a)`,
//!   `dm/dt = h'(a) ε G`, `h'(a) = −∂_aΦ / ∂_mΦ` (implicit function theorem).
//! * Using `Φ = 0` to eliminate the k = 1 residual, `G|_{M0} = S(m, a)` with
//!   `S = Σ_k (k−1) c_k m^k (a c_k m^k − c*_k)`: the unlearning criterion is
//!   `dm/dt|_{M0} = ε S / A'(m) < 0`, i.e. `S > 0` where `A' < 0`.
//! * Slow fixed points: `S(m, A(m)) = 0`; for `σ = c1 h1 + c2 h2`, `σ* = c*1 h1 + c*2 h2`:
//!   `m_eq = c1 c*2 / (c2 c*1)`, `a_eq = c*1² c2 / (c1² c*2)`.

use super::integrate_order_parameters;
use super::limit::LimitModel;
use crate::train::ode::from_fn;
use crate::{Error, Result};

/// Which branch of the critical manifold a point lies on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Branch {
    /// `Φ(m, a) = 0`, `|m| < 1`.
    Interior,
    /// `m = +1` or `m = −1` (the spherical boundary).
    Boundary,
}

/// A point of the critical manifold with its fast stability.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct CriticalPoint {
    pub m: f64,
    pub a: f64,
    pub branch: Branch,
    /// `∂F/∂m` at the point.
    pub dfast_dm: f64,
    /// `∂F/∂m < 0`.
    pub attracting: bool,
}

fn bisect(mut f: impl FnMut(f64) -> f64, mut lo: f64, mut hi: f64) -> f64 {
    let mut flo = f(lo);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        let fm = f(mid);
        if fm == 0.0 {
            return mid;
        }
        if (fm < 0.0) == (flo < 0.0) {
            lo = mid;
            flo = fm;
        } else {
            hi = mid;
        }
        if hi - lo < 1e-15 {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// All roots of `f` on `[lo, hi]` found by scanning `n` equal cells for sign changes and
/// refining each by bisection (roots of even multiplicity that touch zero are missed).
pub fn scan_roots(mut f: impl FnMut(f64) -> f64, lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let mut roots = Vec::new();
    let h = (hi - lo) / n as f64;
    let mut x0 = lo;
    let mut f0 = f(x0);
    for i in 1..=n {
        let x1 = lo + h * i as f64;
        let f1 = f(x1);
        if f0 == 0.0 {
            roots.push(x0);
        } else if f0 * f1 < 0.0 {
            roots.push(bisect(&mut f, x0, x1));
        }
        x0 = x1;
        f0 = f1;
    }
    if f0 == 0.0 {
        roots.push(x0);
    }
    roots
}

impl LimitModel {
    /// Interior branch `A(m) = Σ k c_k c*_k m^{k−1} / Σ k c_k² m^{2k−1}` (NaN where the
    /// denominator vanishes).
    pub fn manifold_a(&self, m: f64) -> f64 {
        let num: f64 = (1..self.orders())
            .map(|k| k as f64 * self.student.c(k) * self.teacher.c(k) * m.powi(k as i32 - 1))
            .sum();
        let den = -self.dphi_da(m);
        if den == 0.0 {
            f64::NAN
        } else {
            num / den
        }
    }
    /// `A'(m) = −∂_mΦ / ∂_aΦ` on the interior branch.
    pub fn manifold_slope(&self, m: f64) -> f64 {
        let a = self.manifold_a(m);
        -self.dphi_dm(m, a) / self.dphi_da(m)
    }
    /// All points of the critical manifold at second-layer value `a`: interior roots of
    /// `Φ(·, a)` on (−1, 1) (scan of `n` cells + bisection) and the boundary points `m = ±1`,
    /// each classified by the sign of `∂F/∂m`.
    pub fn critical_points(&self, a: f64, n: usize) -> Vec<CriticalPoint> {
        let mut pts: Vec<CriticalPoint> =
            scan_roots(|m| self.phi(m, a), -1.0 + 1e-12, 1.0 - 1e-12, n)
                .into_iter()
                .map(|m| {
                    let d = self.dfast_dm(m, a);
                    CriticalPoint {
                        m,
                        a,
                        branch: Branch::Interior,
                        dfast_dm: d,
                        attracting: d < 0.0,
                    }
                })
                .collect();
        for m in [-1.0, 1.0] {
            let d = self.dfast_dm(m, a);
            pts.push(CriticalPoint {
                m,
                a,
                branch: Branch::Boundary,
                dfast_dm: d,
                attracting: d < 0.0,
            });
        }
        pts
    }
    /// Unlearning criterion `S(m, a) = Σ_k (k−1) c_k m^k (a c_k m^k − c*_k)`; on the interior
    /// branch `G = S`, so alignment decays along the slow flow iff `S / A'(m) < 0`.
    pub fn unlearning_criterion(&self, m: f64, a: f64) -> f64 {
        (0..self.orders())
            .map(|k| {
                (k as f64 - 1.0)
                    * self.student.c(k)
                    * m.powi(k as i32)
                    * (a * self.student.c(k) * m.powi(k as i32) - self.teacher.c(k))
            })
            .sum()
    }
    /// Reduced slow flow on the interior branch at alignment m: `(dm/dt, da/dt)` with
    /// `a = A(m)`, `da/dt = ε G(m, A(m))`, `dm/dt = da/dt / A'(m)`.
    pub fn reduced_flow(&self, m: f64) -> (f64, f64) {
        let a = self.manifold_a(m);
        let da = self.eps * self.slow(m, a);
        (da / self.manifold_slope(m), da)
    }
    /// Slow fixed points on the interior branch in (0, 1): roots of `S(m, A(m))` where
    /// `A(m) > 0`, returned as `(m_eq, a_eq)`.
    pub fn slow_fixed_points(&self) -> Vec<(f64, f64)> {
        scan_roots(
            |m| self.unlearning_criterion(m, self.manifold_a(m)),
            1e-6,
            1.0 - 1e-9,
            4000,
        )
        .into_iter()
        .map(|m| (m, self.manifold_a(m)))
        .filter(|(_, a)| a.is_finite() && *a > 0.0)
        .collect()
    }
    /// Integrate the reduced 1-D flow `dm/dt = ε S(m, A(m)) / A'(m)` from `m0` (on the
    /// interior branch) and return `(m, A(m))` at `save_at`.
    pub fn integrate_reduced(
        &self,
        m0: f64,
        save_at: &[f64],
        rtol: f64,
    ) -> Result<Vec<(f64, f64)>> {
        if !(m0 > 0.0 && m0 < 1.0) {
            return Err(Error::config(
                "reduced.m0",
                format!(
                    "the reduced flow starts on the interior branch, need 0 < m0 < 1, got {m0}"
                ),
            ));
        }
        let mut field = from_fn(1, |_t, y: &[f64], dy: &mut [f64]| {
            dy[0] = self.reduced_flow(y[0]).0;
            Ok(())
        });
        let ys = integrate_order_parameters(&mut field, rtol, &[m0], save_at, 10_000_000)?;
        Ok(ys.iter().map(|y| (y[0], self.manifold_a(y[0]))).collect())
    }
}
