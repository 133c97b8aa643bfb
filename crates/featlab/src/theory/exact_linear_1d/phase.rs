//! The kernel / feature-learning phase diagram of the exact 1-D model.
//!
//! Exact order parameter (no expansion; derived in `docs/exact-linear-1d.md`): because the
//! NTK is a function of β only, `K(t)² = γ⁴C² + 4γ²η_uη_w(β(t)² + ω²)`,
//!
//! ```text
//! Δ = K(∞)/K(0) − 1 = √(1 + (k² − β₀²)/K̄²) − 1,    K̄ = |γ|(η_u|w₀|² + η_w|u₀|²)/(2√(η_uη_w)).
//! ```
//!
//! For a random Gaussian init ρ₀ = β₀/K̄ = O(d^{−1/2}), so Δ → 0 iff K̄/|k| → ∞: the
//! **analytic boundary** is `K̄ = |k|` (Δ = √2 − 1 there). At large width
//! `K̄ ≈ |γ| d (σ_u² √(η_w/η_u) + σ_w² √(η_u/η_w))/2`; with the power laws
//! γ = γ₀ d^{−a}, σ_u² = σ₀² d^{−b_u}, σ_w² = σ₀² d^{−b_w}, η_u/η_w = d^{c} (product fixed)
//! this is K̄ ~ d^{e} with
//!
//! ```text
//! e = 1 − a + max(−b_u − c/2, −b_w + c/2),
//! ```
//!
//! kernel iff e > 0, feature learning iff e ≤ 0. NTK scaling (a = ½, b = c = 0): e = ½,
//! kernel. Mean-field scaling (a = 1, b = c = 0): e = 0, Δ = Θ(1), feature learning.

use super::{ExactLinear1d, Hyper1d, Moments1d};
use crate::rng::{normal, Rng};
use crate::Result;
use rand_distr::{ChiSquared, Distribution};
use serde::{Deserialize, Serialize};

/// A phase-diagram axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Axis {
    /// Width d (log axis).
    Width,
    /// Output scale γ (log axis; the value replaces γ₀ d^{−a}).
    Gamma,
    /// Both init stds σ_u = σ_w = σ (log axis).
    Sigma,
    /// σ_u alone (log axis).
    SigmaU,
    /// σ_w alone (log axis).
    SigmaW,
    /// η_u/η_w at fixed √(η_uη_w) (log axis).
    LrRatio,
    /// a in γ = γ₀ d^{−a} (linear axis).
    GammaExponent,
    /// b in σ_u² = σ₀² d^{−b}, σ_w² = σ₀² d^{−b} (linear axis).
    SigmaExponent,
    /// c in η_u/η_w = d^{c} (linear axis).
    LrRatioExponent,
}

impl Axis {
    /// Whether the axis is naturally logarithmic.
    pub fn is_log(self) -> bool {
        !matches!(
            self,
            Axis::GammaExponent | Axis::SigmaExponent | Axis::LrRatioExponent
        )
    }
    /// Label for plots.
    pub fn label(self) -> &'static str {
        match self {
            Axis::Width => "width d",
            Axis::Gamma => "output scale γ",
            Axis::Sigma => "init scale σ (= σ_u = σ_w)",
            Axis::SigmaU => "readout init σ_u",
            Axis::SigmaW => "first-layer init σ_w",
            Axis::LrRatio => "learning-rate ratio η_u/η_w",
            Axis::GammaExponent => "a  (γ = γ₀ d^{−a})",
            Axis::SigmaExponent => "b  (σ² = σ₀² d^{−b})",
            Axis::LrRatioExponent => "c  (η_u/η_w = d^{c})",
        }
    }
}

/// Power-law exponents of the hyperparameters in the width (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScalingExponents {
    /// a: γ = γ₀ d^{−a}.
    #[serde(default)]
    pub gamma: f64,
    /// b_u: σ_u² = σ_u,0² d^{−b_u}.
    #[serde(default)]
    pub sigma_u: f64,
    /// b_w: σ_w² = σ_w,0² d^{−b_w}.
    #[serde(default)]
    pub sigma_w: f64,
    /// c: η_u/η_w = ratio₀ · d^{c} at fixed √(η_uη_w).
    #[serde(default)]
    pub lr_ratio: f64,
}

impl ScalingExponents {
    /// e = 1 − a + max(−b_u − c/2, −b_w + c/2): K̄ ~ d^{e}. Kernel iff e > 0.
    pub fn kernel_exponent(&self) -> f64 {
        1.0 - self.gamma
            + (-self.sigma_u - 0.5 * self.lr_ratio).max(-self.sigma_w + 0.5 * self.lr_ratio)
    }
}

/// One point of a phase diagram: every hyperparameter of the 1-D model with a random
/// Gaussian initialisation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhasePoint {
    pub width: usize,
    /// γ₀ (multiplied by d^{−a}).
    pub gamma: f64,
    /// σ_u,0, σ_w,0 (stds; variances multiplied by d^{−b}).
    pub sigma_u: f64,
    pub sigma_w: f64,
    /// √(η_u η_w) (the time unit) and η_u/η_w (multiplied by d^{c}).
    pub lr: f64,
    pub lr_ratio: f64,
    /// E[x²] and the target slope k = E[xy]/E[x²].
    pub s: f64,
    pub k: f64,
    #[serde(default)]
    pub exponents: ScalingExponents,
}

/// Effective (γ, σ_u, σ_w, η_u, η_w) of a point after applying the power laws.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Effective {
    pub gamma: f64,
    pub sigma_u: f64,
    pub sigma_w: f64,
    pub lr_u: f64,
    pub lr_w: f64,
}

impl PhasePoint {
    /// The point with `axis` set to `v`.
    pub fn with(mut self, axis: Axis, v: f64) -> Self {
        match axis {
            Axis::Width => self.width = v.round().max(1.0) as usize,
            Axis::Gamma => self.gamma = v,
            Axis::Sigma => {
                self.sigma_u = v;
                self.sigma_w = v
            }
            Axis::SigmaU => self.sigma_u = v,
            Axis::SigmaW => self.sigma_w = v,
            Axis::LrRatio => self.lr_ratio = v,
            Axis::GammaExponent => self.exponents.gamma = v,
            Axis::SigmaExponent => {
                self.exponents.sigma_u = v;
                self.exponents.sigma_w = v
            }
            Axis::LrRatioExponent => self.exponents.lr_ratio = v,
        }
        self
    }

    /// Apply the power laws.
    pub fn effective(&self) -> Effective {
        let d = self.width as f64;
        let e = &self.exponents;
        let ratio = self.lr_ratio * d.powf(e.lr_ratio);
        Effective {
            gamma: self.gamma * d.powf(-e.gamma),
            sigma_u: self.sigma_u * d.powf(-0.5 * e.sigma_u),
            sigma_w: self.sigma_w * d.powf(-0.5 * e.sigma_w),
            lr_u: self.lr * ratio.sqrt(),
            lr_w: self.lr / ratio.sqrt(),
        }
    }

    /// Typical (large-d) kernel scale K̄ ≈ |γ| d (σ_u² √(η_w/η_u) + σ_w² √(η_u/η_w))/2.
    pub fn kbar_typical(&self) -> f64 {
        let f = self.effective();
        let d = self.width as f64;
        f.gamma.abs()
            * d
            * (f.sigma_u.powi(2) * (f.lr_w / f.lr_u).sqrt()
                + f.sigma_w.powi(2) * (f.lr_u / f.lr_w).sqrt())
            / 2.0
    }

    /// The analytic boundary function: ln(K̄_typical/|k|) (> 0 kernel side, < 0 feature side).
    pub fn boundary_log_ratio(&self) -> f64 {
        (self.kbar_typical() / self.k.abs()).ln()
    }

    /// Exact solution for one random Gaussian initialisation, drawn through the exact
    /// distribution of its sufficient statistics ([`sample_init_stats`]) in O(1) time.
    pub fn sample(&self, rng: &mut Rng) -> Result<ExactLinear1d> {
        let f = self.effective();
        let (nu2, nw2, uw) = sample_init_stats(rng, self.width, f.sigma_u, f.sigma_w);
        let hyper = Hyper1d {
            gamma: f.gamma,
            lr_u: f.lr_u,
            lr_w: f.lr_w,
        };
        let m = Moments1d {
            s: self.s,
            k: self.k,
            loss_floor: 0.0,
        };
        ExactLinear1d::from_stats(hyper, m, nu2, nw2, uw)
    }
}

/// Exact joint draw of (|u|², |w|², u·w) for u ~ N(0, σ_u² I_d), w ~ N(0, σ_w² I_d)
/// independent, in O(1): by rotation invariance put u along e₁, so |u|² = σ_u² χ²_d,
/// w = σ_w (ξ e₁ + χ_{d−1} e₂) with ξ ~ N(0, 1) and χ²_{d−1} independent, hence
/// u·w = |u| σ_w ξ and |w|² = σ_w² (ξ² + χ²_{d−1}).
pub fn sample_init_stats(rng: &mut Rng, d: usize, sigma_u: f64, sigma_w: f64) -> (f64, f64, f64) {
    let chi_u = ChiSquared::new(d as f64).expect("d ≥ 1").sample(rng);
    let xi = normal(rng);
    let chi_w = if d > 1 {
        ChiSquared::new((d - 1) as f64).expect("d ≥ 2").sample(rng)
    } else {
        0.0
    };
    let nu2 = sigma_u * sigma_u * chi_u;
    let uw = nu2.sqrt() * sigma_w * xi;
    let nw2 = sigma_w * sigma_w * (xi * xi + chi_w);
    (nu2, nw2, uw)
}

/// Order parameters of a phase-diagram cell (median over replicate inits).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CellValue {
    /// Median of Δ = K(∞)/K(0) − 1.
    pub ntk_rel_change: f64,
    /// Median of |ln(K(∞)/K(0))|.
    pub abs_log_ntk_ratio: f64,
    /// Median of |ln z₊|.
    pub abs_log_z_plus: f64,
    /// Median of the change of cos²∠(u, w).
    pub alignment_change: f64,
}

/// Evaluate a cell with `replicates` random inits (deterministic in `rng`).
pub fn evaluate_cell(point: &PhasePoint, replicates: usize, rng: &mut Rng) -> Result<CellValue> {
    let mut d = Vec::with_capacity(replicates);
    let mut l = Vec::with_capacity(replicates);
    let mut z = Vec::with_capacity(replicates);
    let mut a = Vec::with_capacity(replicates);
    for _ in 0..replicates.max(1) {
        let sol = point.sample(rng)?;
        let op = sol.order_parameters();
        d.push(op.ntk_rel_change);
        l.push(op.ntk_rel_change.ln_1p().abs());
        z.push(op.log_z_plus.abs());
        a.push(op.cos_inf * op.cos_inf - op.cos0 * op.cos0);
    }
    Ok(CellValue {
        ntk_rel_change: median(&mut d),
        abs_log_ntk_ratio: median(&mut l),
        abs_log_z_plus: median(&mut z),
        alignment_change: median(&mut a),
    })
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// The analytic boundary K̄_typical = |k| as a curve y(x) over the heatmap's x values:
/// for each x, bisection in y over [y_min, y_max] (in log space for log axes) of
/// `boundary_log_ratio`; x values with no sign change are skipped.
pub fn boundary_curve(
    base: &PhasePoint,
    x_axis: Axis,
    xs: &[f64],
    y_axis: Axis,
    y_range: (f64, f64),
) -> (Vec<f64>, Vec<f64>) {
    let to = |v: f64| if y_axis.is_log() { v.ln() } else { v };
    let from = |v: f64| if y_axis.is_log() { v.exp() } else { v };
    let (lo0, hi0) = (to(y_range.0), to(y_range.1));
    let mut bx = Vec::new();
    let mut by = Vec::new();
    for &x in xs {
        let p = base.with(x_axis, x);
        let f = |y: f64| p.with(y_axis, from(y)).boundary_log_ratio();
        let (mut lo, mut hi) = (lo0, hi0);
        let (flo, fhi) = (f(lo), f(hi));
        if !(flo.is_finite() && fhi.is_finite()) || flo.signum() == fhi.signum() {
            continue;
        }
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if f(mid).signum() == flo.signum() {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        bx.push(x);
        by.push(from(0.5 * (lo + hi)));
    }
    (bx, by)
}
