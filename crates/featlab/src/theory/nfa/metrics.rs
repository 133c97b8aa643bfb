//! Matrix correlations, NFMs, PSD powers and the best-fit NFA exponent.
//!
//! * Pearson correlation of flattened matrices (the default; what every public NFA code
//!   computes: aradha/agop_feature_learning, dmbeaglehole/centered_NFA `mat_cov`):
//!   `ρ(A, B) = ⟨a − ā, b − b̄⟩ / (‖a − ā‖ ‖b − b̄‖)`, `a = vec A`, `ā` the scalar mean.
//! * Cosine similarity `⟨A, B⟩_F / (‖A‖_F ‖B‖_F)`.
//! * NFM `W_lᵀ W_l`; NFA statement `W_lᵀW_l ∝ G_l^α` (Radhakrishnan et al. 2024: α = ½;
//!   Tansley, Massart & Cartis 2025: α = 1/L for the first layer of an L-layer linear net).
//! * Best-fit α two ways: maximise `ρ(NFM, G^α)` over α, and regress `log λ_k(NFM)` on
//!   `log λ_k(G)` (eigenvalues matched in descending order).

use crate::linalg::{matmul, sym_eig};
use crate::Result;
use faer::{Accum, Mat, MatRef, Par};
use serde::{Deserialize, Serialize};

/// Eigenvalues at or below this fraction of the largest are treated as exact zeros when
/// raising a PSD matrix to a power (so round-off in the null space, e.g. 1e-17, does not
/// become (1e-17)^{1/6} ≈ 1e-3 under small exponents).
pub const EIG_REL_FLOOR: f64 = 1e-12;

/// Which matrix correlation to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Correlation {
    /// Pearson correlation of the flattened matrices (public NFA code's convention).
    #[default]
    Pearson,
    /// Cosine similarity `⟨A,B⟩_F/(‖A‖_F‖B‖_F)`.
    Cosine,
}

/// `ρ(A, B)` of two equally shaped matrices (NaN when either is constant / zero).
pub fn correlation(a: MatRef<'_, f64>, b: MatRef<'_, f64>, kind: Correlation) -> f64 {
    assert_eq!(
        (a.nrows(), a.ncols()),
        (b.nrows(), b.ncols()),
        "correlation: shapes differ"
    );
    let cnt = (a.nrows() * a.ncols()) as f64;
    let (mut sa, mut sb) = (0.0, 0.0);
    if kind == Correlation::Pearson {
        for j in 0..a.ncols() {
            for i in 0..a.nrows() {
                sa += a[(i, j)];
                sb += b[(i, j)];
            }
        }
        sa /= cnt;
        sb /= cnt;
    }
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for j in 0..a.ncols() {
        for i in 0..a.nrows() {
            let (x, y) = (a[(i, j)] - sa, b[(i, j)] - sb);
            ab += x * y;
            aa += x * x;
            bb += y * y;
        }
    }
    let den = (aa * bb).sqrt();
    if den > 0.0 {
        ab / den
    } else {
        f64::NAN
    }
}

/// Neural feature matrix `WᵀW` (d × d) of a k × d weight.
pub fn nfm(w: MatRef<'_, f64>) -> Mat<f64> {
    let mut out = Mat::zeros(w.ncols(), w.ncols());
    matmul(
        out.as_mut(),
        Accum::Replace,
        w.transpose(),
        w,
        1.0,
        Par::Seq,
    );
    out
}

/// `WᵀKW` (d × d) for W k × d and K k × k.
pub fn sandwich(w: MatRef<'_, f64>, k: MatRef<'_, f64>) -> Mat<f64> {
    let mut kw = Mat::zeros(k.nrows(), w.ncols());
    matmul(kw.as_mut(), Accum::Replace, k, w, 1.0, Par::Seq);
    let mut out = Mat::zeros(w.ncols(), w.ncols());
    matmul(
        out.as_mut(),
        Accum::Replace,
        w.transpose(),
        kw.as_ref(),
        1.0,
        Par::Seq,
    );
    out
}

/// Relative Frobenius distance `‖A − B‖_F / ‖A‖_F`.
pub fn rel_error(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> f64 {
    let mut num = 0.0;
    let mut den = 0.0;
    for j in 0..a.ncols() {
        for i in 0..a.nrows() {
            num += (a[(i, j)] - b[(i, j)]).powi(2);
            den += a[(i, j)].powi(2);
        }
    }
    (num / den).sqrt()
}

/// A PSD matrix in its eigenbasis, `G = U diag(s) Uᵀ` (s clamped to 0 below
/// [`EIG_REL_FLOOR`]·max), for fast powers `G^α = U diag(s^α) Uᵀ` and fast correlations
/// `ρ(A, G^α)` in O(d) per α after an O(d³) setup:
/// `⟨A, G^α⟩ = Σ_k s_k^α (u_kᵀAu_k)`, `‖G^α‖² = Σ_k s_k^{2α}`,
/// `Σ_ij (G^α)_ij = Σ_k s_k^α (1ᵀu_k)²`.
pub struct PsdPower {
    u: Mat<f64>,
    s: Vec<f64>,
}

impl PsdPower {
    /// Eigendecompose a symmetric PSD matrix.
    pub fn new(g: MatRef<'_, f64>) -> Result<Self> {
        let (u, mut s) = sym_eig(g)?;
        let smax = s.iter().fold(0.0f64, |m, v| m.max(*v));
        for v in s.iter_mut() {
            if *v <= EIG_REL_FLOOR * smax {
                *v = 0.0;
            }
        }
        Ok(PsdPower { u, s })
    }
    /// Eigenvalues (ascending, clamped).
    pub fn eigenvalues(&self) -> &[f64] {
        &self.s
    }
    /// `G^α`.
    pub fn pow(&self, alpha: f64) -> Mat<f64> {
        let n = self.u.nrows();
        let p: Vec<f64> = self
            .s
            .iter()
            .map(|&v| if v > 0.0 { v.powf(alpha) } else { 0.0 })
            .collect();
        let scaled = Mat::from_fn(n, n, |i, j| self.u[(i, j)] * p[j]);
        let mut out = Mat::zeros(n, n);
        matmul(
            out.as_mut(),
            Accum::Replace,
            scaled.as_ref(),
            self.u.transpose(),
            1.0,
            Par::Seq,
        );
        out
    }
    /// A correlator of `a` against powers of this matrix.
    pub fn correlator(&self, a: MatRef<'_, f64>, kind: Correlation) -> PowerCorrelator<'_> {
        let n = self.u.nrows();
        let mut ua = Mat::zeros(n, n);
        matmul(
            ua.as_mut(),
            Accum::Replace,
            a,
            self.u.as_ref(),
            1.0,
            Par::Seq,
        );
        let diag: Vec<f64> = (0..n)
            .map(|k| (0..n).map(|i| self.u[(i, k)] * ua[(i, k)]).sum())
            .collect();
        let colsum: Vec<f64> = (0..n)
            .map(|k| (0..n).map(|i| self.u[(i, k)]).sum::<f64>().powi(2))
            .collect();
        let cnt = (n * n) as f64;
        let mut sa = 0.0;
        let mut aa = 0.0;
        for j in 0..n {
            for i in 0..n {
                sa += a[(i, j)];
                aa += a[(i, j)] * a[(i, j)];
            }
        }
        PowerCorrelator {
            p: self,
            diag,
            colsum,
            sum_a: sa,
            sq_a: aa,
            cnt,
            kind,
        }
    }
}

/// `α ↦ ρ(A, G^α)` in O(d) per evaluation (see [`PsdPower`]).
pub struct PowerCorrelator<'a> {
    p: &'a PsdPower,
    diag: Vec<f64>,
    colsum: Vec<f64>,
    sum_a: f64,
    sq_a: f64,
    cnt: f64,
    kind: Correlation,
}

impl PowerCorrelator<'_> {
    /// `ρ(A, G^α)`.
    pub fn corr(&self, alpha: f64) -> f64 {
        let (mut ab, mut bb, mut sb) = (0.0, 0.0, 0.0);
        for (k, &s) in self.p.s.iter().enumerate() {
            if s > 0.0 {
                let sp = s.powf(alpha);
                ab += sp * self.diag[k];
                bb += sp * sp;
                sb += sp * self.colsum[k];
            }
        }
        let (ab, aa, bb) = match self.kind {
            Correlation::Cosine => (ab, self.sq_a, bb),
            Correlation::Pearson => (
                ab - self.sum_a * sb / self.cnt,
                self.sq_a - self.sum_a * self.sum_a / self.cnt,
                bb - sb * sb / self.cnt,
            ),
        };
        let den = (aa.max(0.0) * bb.max(0.0)).sqrt();
        if den > 0.0 {
            ab / den
        } else {
            f64::NAN
        }
    }

    /// `argmax_α ρ(A, G^α)` on `[lo, hi]`: a 64-point grid, then golden-section search
    /// in the bracket around the best grid point. Returns (α, ρ).
    pub fn argmax(&self, lo: f64, hi: f64) -> (f64, f64) {
        let m = 64;
        let grid: Vec<f64> = (0..=m)
            .map(|i| lo + (hi - lo) * i as f64 / m as f64)
            .collect();
        let vals: Vec<f64> = grid.iter().map(|&a| self.corr(a)).collect();
        let Some(best) = (0..=m)
            .filter(|&i| vals[i].is_finite())
            .max_by(|&i, &j| vals[i].total_cmp(&vals[j]))
        else {
            return (f64::NAN, f64::NAN);
        };
        let (mut a, mut b) = (grid[best.saturating_sub(1)], grid[(best + 1).min(m)]);
        let g = 0.5 * (5f64.sqrt() - 1.0);
        let mut x1 = b - g * (b - a);
        let mut x2 = a + g * (b - a);
        let (mut f1, mut f2) = (self.corr(x1), self.corr(x2));
        for _ in 0..80 {
            if f1 >= f2 {
                b = x2;
                x2 = x1;
                f2 = f1;
                x1 = b - g * (b - a);
                f1 = self.corr(x1);
            } else {
                a = x1;
                x1 = x2;
                f1 = f2;
                x2 = a + g * (b - a);
                f2 = self.corr(x2);
            }
        }
        let x = 0.5 * (a + b);
        let fx = self.corr(x);
        if fx >= vals[best] {
            (x, fx)
        } else {
            (grid[best], vals[best])
        }
    }
}

/// `ρ(NFM, G^α)`.
pub fn nfa_correlation(
    nfm: MatRef<'_, f64>,
    agop: MatRef<'_, f64>,
    alpha: f64,
    kind: Correlation,
) -> Result<f64> {
    Ok(PsdPower::new(agop)?.correlator(nfm, kind).corr(alpha))
}

/// Best-fit exponent by log-spectrum regression: the least-squares slope of
/// `log λ_k(NFM)` against `log λ_k(G)`, eigenvalues sorted descending and paired, using
/// the pairs where both exceed `rel_floor` × their largest eigenvalue. NaN with fewer
/// than two such pairs or a flat AGOP spectrum.
pub fn alpha_by_spectrum(
    nfm: MatRef<'_, f64>,
    agop: MatRef<'_, f64>,
    rel_floor: f64,
) -> Result<f64> {
    let (_, a) = sym_eig(nfm)?;
    let (_, g) = sym_eig(agop)?;
    Ok(alpha_from_spectra(&a, &g, rel_floor))
}

/// [`alpha_by_spectrum`] from the two spectra, each in ascending order (as [`sym_eig`]
/// and [`PsdPower::eigenvalues`] give them; PSD clamping changes nothing, the pairs below
/// `rel_floor` × the largest being dropped).
pub fn alpha_from_spectra(nfm_eigs: &[f64], agop_eigs: &[f64], rel_floor: f64) -> f64 {
    let (a, g) = (nfm_eigs, agop_eigs);
    let (Some(&amax), Some(&gmax)) = (a.last(), g.last()) else {
        return f64::NAN;
    };
    let pts: Vec<(f64, f64)> = a
        .iter()
        .rev()
        .zip(g.iter().rev())
        .filter(|(x, y)| **x > rel_floor * amax && **y > rel_floor * gmax)
        .map(|(x, y)| (y.ln(), x.ln()))
        .collect();
    if pts.len() < 2 {
        return f64::NAN;
    }
    let k = pts.len() as f64;
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / k;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / k;
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx > 1e-24 {
        sxy / sxx
    } else {
        f64::NAN
    }
}

/// Relative weight change `‖W − W₀‖_F / ‖W‖_F` (Beaglehole et al. 2024's code).
pub fn relative_change(w: MatRef<'_, f64>, w0: MatRef<'_, f64>) -> f64 {
    let mut num = 0.0;
    let mut den = 0.0;
    for j in 0..w.ncols() {
        for i in 0..w.nrows() {
            num += (w[(i, j)] - w0[(i, j)]).powi(2);
            den += w[(i, j)].powi(2);
        }
    }
    (num / den).sqrt()
}

/// Imbalance norms `‖W_{l+1}ᵀW_{l+1} − W_lW_lᵀ‖_F`, l = 1 … L−1 (conserved by gradient
/// flow on the unregularised loss of a deep linear net; Arora et al. 2018; Tansley et al. 2025).
pub fn imbalance(weights: &[MatRef<'_, f64>]) -> Vec<f64> {
    (0..weights.len().saturating_sub(1))
        .map(|l| {
            let a = nfm(weights[l + 1]);
            let w = weights[l];
            let mut b = Mat::zeros(w.nrows(), w.nrows());
            matmul(b.as_mut(), Accum::Replace, w, w.transpose(), 1.0, Par::Seq);
            let mut s = 0.0;
            for j in 0..a.ncols() {
                for i in 0..a.nrows() {
                    s += (a[(i, j)] - b[(i, j)]).powi(2);
                }
            }
            s.sqrt()
        })
        .collect()
}
