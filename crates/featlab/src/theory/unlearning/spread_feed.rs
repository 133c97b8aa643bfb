//! The one-step SGD feed of the pair-overlap spread, to second order in the kicks and exact in
//! N and d at the regular simplex (featlab's own derivation for its model of Imai, Nishiyama &
//! Imaizumi 2026, arXiv 2602.07378; `docs/unlearning.md`, "SGD noise: the pair-overlap
//! spread", step 16).
//!
//! **Kicks.** One online-SGD step (mean field, first-layer rate ηN) moves neuron j by the
//! tangent vector `k_j = −(η/B) Σ_b a r_b σ'(u_bj) P_j x_b`, `P_j = I − w_j w_jᵀ`, then
//! renormalises. The pair cosine of the orthogonal parts, `q_ij = ξ_i·ξ_j`, is the cosine of the
//! orthogonal parts of the *unnormalised* vectors, so the renormalisation drops out exactly:
//! `q'_ij = cos(ξ_i + κ_i, ξ_j + κ_j)`, `κ_j = P⊥k_j/s` (P⊥ removes θ*, `s² = 1 − m²`), and
//! `κ_j = −(η/B) Σ_b h_j(x_b)` with the per-sample vector
//! `h_j(x) = (a r σ'(u_j)/s)(x⊥ − s u_j ξ_j)`.
//!
//! **Itô expansion.** With `κ = κ̄ + n`, `Cov(n_i, n_j) = (η²/B) Cov_x(h_i, h_j)`, the second-order
//! expansion of the cosine gives `E[Δ(q_ij²)] − Δ_pop = (η²/B)(2q D + T) + O(η³/B)`:
//!
//! * `T = Var_x(Y)`, `Y = (A_ij − qB_j) + (A_ji − qB_i)` (the tangent components),
//! * `D = tr Cov(h_i, h_j) − Cov(A_ij + A_ji, B_i + B_j)
//!   + q[Cov(B_i, B_j) + (3/2)(Var B_i + Var B_j) − ½(tr Var h_i + tr Var h_j)]`,
//!
//! with `A_ij = ξ_i·h_j = (a r σ'_j/s)(g_i − s q u_j)`, `B_j = ξ_j·h_j = (a r σ'_j/s)(g_j − s u_j)`,
//! `h_i·h_j = (a r/s)² σ'_iσ'_j (R − s u_i g_i − s u_j g_j + s² q u_i u_j)`, `g_k = ξ_k·x`,
//! `R = |x⊥|²`.
//!
//! **Regular simplex (N = d).** The ξ_j are a tight frame of `n = d − 1` dimensions with
//! `Σ_k ξ_k = 0`, `Σ_k ξ_k ξ_kᵀ = (N/n) I`, all `q_ij = −1/(N − 1)`. Then `Σ_k g_k = 0`,
//! `Σ_k g_k² = (N/n) R`, and the student's output is, for a degree-2 σ exactly,
//! `f = a β_0(z) + a β_2(z) (R/n − 1)/√2`, `β_0 = Σ c_k m^k h_k`, `β_2 = s² E_g σ''/√2`: the
//! residual depends on the other neurons only through `R` (χ²_n). By symmetry the population
//! kick is radial, `h̄_j = E[B] ξ_j`, so `h̄_i·h̄_j = q E[B]²`. The expectations are over
//! `(z, g_i, g_j, R)`: `g_i = γ_1`, `g_j = qγ_1 + √(1 − q²)γ_2`, `R = γ_1² + γ_2² + R'`,
//! `R' ~ χ²_{n−2}` independent; Gauss–Hermite in z, γ_1, γ_2 and a two-node Gauss rule for R'
//! (the integrands are cubic in R'). For students of higher degree the parts of the output of
//! Hermite order ≥ 3 in the neurons' own Gaussians are dropped (their O(1/N) variance).
//!
//! **Step size.** From the regular simplex the population step keeps every ξ_j (it only
//! rescales `ξ_j + κ̄_j = (1 − ηE[B]) ξ_j`), so to the next order the one-step feed is
//! `(η²/B) F / (1 − ηE[B])²`; the η → 0 rate is `dQ/dt = (λ/d) F`, `λ = ηd/B`.

use super::hermite::{GaussHermite, HermiteSeries};
use super::spread::derivative_series;
use crate::{Error, Result};

/// The noise contractions of one pair at the regular simplex (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimplexFeed {
    /// `F = 2qD + T`: `E[Δ(q_ij²)] − Δ_pop = (η²/B) F` per step.
    pub feed: f64,
    /// Itô drift D of one pair cosine: `E[Δq_ij] − Δ_pop = (η²/B) D`.
    pub drift: f64,
    /// Variance contraction `T = Var_x(Y)`: `Var(Δq_ij) = (η²/B) T`.
    pub diffusion: f64,
    /// `E[B] = ξ_j·h̄_j`: the population kick is `κ̄_j = −η E[B] ξ_j`.
    pub radial_mean: f64,
    /// `E[A_ij] = ξ_i·h̄_j` (equals `q E[B]` by symmetry; kept as a check).
    pub cross_mean: f64,
}

/// Quadrature rule for [`SimplexFeed`] of a given student σ and teacher σ*.
#[derive(Debug, Clone)]
pub struct SimplexFeedRule {
    student: HermiteSeries,
    teacher: HermiteSeries,
    /// `σ''` as a Hermite series.
    second: HermiteSeries,
    quad: GaussHermite,
}

impl SimplexFeedRule {
    /// The rule for σ, σ*: Gauss–Hermite with `max(len σ, len σ*) + len σ + 1` points, exact for
    /// the polynomial integrands (degree ≤ 2 max(deg σ, deg σ*) + 2 deg σ + 2 in z and
    /// ≤ 2 deg σ + 4 in γ_1, γ_2).
    pub fn new(student: &HermiteSeries, teacher: &HermiteSeries) -> Result<Self> {
        let quad = GaussHermite::new(student.len().max(teacher.len()) + student.len() + 1)?;
        Ok(SimplexFeedRule {
            student: student.clone(),
            teacher: teacher.clone(),
            second: derivative_series(&derivative_series(student)),
            quad,
        })
    }

    /// The contractions at width N = d (`dim = N`, regular simplex of the orthogonal parts,
    /// alignment m, second-layer weight a).
    pub fn eval(&self, width: f64, m: f64, a: f64) -> Result<SimplexFeed> {
        if !(width >= 5.0 && width.is_finite() && m.abs() < 1.0 && a.is_finite()) {
            return Err(Error::config(
                "spread.feed",
                format!("need N = d ≥ 5, |m| < 1, finite a; got N = {width}, m = {m}, a = {a}"),
            ));
        }
        let n_dim = width - 1.0;
        let q = -1.0 / (width - 1.0);
        let cq = (1.0 - q * q).sqrt();
        let s2 = 1.0 - m * m;
        let s = s2.sqrt();
        // R' ~ χ²_k = 2·Gamma(k/2): two-node Gauss rule for x^α e^{−x}, α = k/2 − 1.
        let k = n_dim - 2.0;
        let al2 = 0.5 * k + 1.0;
        let sq = al2.sqrt();
        let r_rule = [
            (2.0 * (al2 + sq), (sq - 1.0) / (2.0 * sq)),
            (2.0 * (al2 - sq), (sq + 1.0) / (2.0 * sq)),
        ];
        let mean_fit = self.student.smoothed(m);
        let mean_second = self.second.smoothed(m);
        let gq = &self.quad;
        // Accumulators of E[·].
        let mut e = Moments::default();
        for (z, wz) in gq.nodes.iter().zip(&gq.weights) {
            let e0 = a * mean_fit.value(*z) - self.teacher.value(*z);
            let c_r = 0.5 * a * s2 * mean_second.value(*z);
            for (y1, w1) in gq.nodes.iter().zip(&gq.weights) {
                for (y2, w2) in gq.nodes.iter().zip(&gq.weights) {
                    let (gi, gj) = (*y1, q * y1 + cq * y2);
                    let (ui, uj) = (m * z + s * gi, m * z + s * gj);
                    let (dsi, dsj) = (
                        self.student.value_and_derivative(ui).1,
                        self.student.value_and_derivative(uj).1,
                    );
                    for (rr, wr) in r_rule {
                        let big_r = y1 * y1 + y2 * y2 + rr;
                        let r = e0 + c_r * (big_r / n_dim - 1.0);
                        let ki = a * r * dsi / s;
                        let kj = a * r * dsj / s;
                        let a_ij = kj * (gi - s * q * uj);
                        let a_ji = ki * (gj - s * q * ui);
                        let b_i = ki * (gi - s * ui);
                        let b_j = kj * (gj - s * uj);
                        let tr_ij =
                            ki * kj * (big_r - s * ui * gi - s * uj * gj + s2 * q * ui * uj);
                        let tr_ii = ki * ki * (big_r - 2.0 * s * ui * gi + s2 * ui * ui);
                        let tr_jj = kj * kj * (big_r - 2.0 * s * uj * gj + s2 * uj * uj);
                        let y = a_ij + a_ji - q * (b_i + b_j);
                        let w = wz * w1 * w2 * wr;
                        e.add(w, a_ij, a_ji, b_i, b_j, tr_ij, tr_ii, tr_jj, y);
                    }
                }
            }
        }
        Ok(e.finish(q))
    }
}

/// Running expectations `E[·]` of the per-sample contractions of one pair (weights sum to 1),
/// turned into [`SimplexFeed`] by [`Moments::finish`].
#[derive(Debug, Clone, Default)]
pub(super) struct Moments {
    a_ij: f64,
    a_ji: f64,
    b_i: f64,
    b_j: f64,
    ab: f64,
    bb: f64,
    bi2: f64,
    bj2: f64,
    tr_ij: f64,
    tr_ii: f64,
    tr_jj: f64,
    y: f64,
    y2: f64,
}

impl Moments {
    /// Add one sample (or node) of weight w.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn add(
        &mut self,
        w: f64,
        a_ij: f64,
        a_ji: f64,
        b_i: f64,
        b_j: f64,
        tr_ij: f64,
        tr_ii: f64,
        tr_jj: f64,
        y: f64,
    ) {
        self.a_ij += w * a_ij;
        self.a_ji += w * a_ji;
        self.b_i += w * b_i;
        self.b_j += w * b_j;
        self.ab += w * (a_ij + a_ji) * (b_i + b_j);
        self.bb += w * b_i * b_j;
        self.bi2 += w * b_i * b_i;
        self.bj2 += w * b_j * b_j;
        self.tr_ij += w * tr_ij;
        self.tr_ii += w * tr_ii;
        self.tr_jj += w * tr_jj;
        self.y += w * y;
        self.y2 += w * y * y;
    }
    /// The Itô contractions at pair cosine q (module docs; `h̄_i·h̄_j = q E[B]²`).
    pub(super) fn finish(&self, q: f64) -> SimplexFeed {
        let e = self;
        let cov_ab = e.ab - (e.a_ij + e.a_ji) * (e.b_i + e.b_j);
        let cov_bb = e.bb - e.b_i * e.b_j;
        let var_bi = e.bi2 - e.b_i * e.b_i;
        let var_bj = e.bj2 - e.b_j * e.b_j;
        let tr_cov = e.tr_ij - q * e.b_i * e.b_j;
        let tr_var_i = e.tr_ii - e.b_i * e.b_i;
        let tr_var_j = e.tr_jj - e.b_j * e.b_j;
        let drift =
            tr_cov - cov_ab + q * (cov_bb + 1.5 * (var_bi + var_bj) - 0.5 * (tr_var_i + tr_var_j));
        let diffusion = e.y2 - e.y * e.y;
        SimplexFeed {
            feed: 2.0 * q * drift + diffusion,
            drift,
            diffusion,
            radial_mean: 0.5 * (e.b_i + e.b_j),
            cross_mean: 0.5 * (e.a_ij + e.a_ji),
        }
    }
}
