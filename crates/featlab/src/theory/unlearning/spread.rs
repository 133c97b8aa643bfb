//! The spread of the pair overlaps — a fourth order parameter for the finite-width, noisy
//! unlearning dynamics (featlab's own derivation for its model of Imai, Nishiyama & Imaizumi
//! 2026, arXiv 2602.07378; see `docs/unlearning.md`, "SGD noise: the pair-overlap spread").
//!
//! **State.** N unit neurons `w_j = m θ* + s ξ_j`, `s² = 1 − m²`, equal second-layer weights a,
//! with unit orthogonal parts ξ_j whose pair cosines `q_ij = ξ_i·ξ_j` are *not* all equal. Their
//! mean `q̄` is fixed by the common component p of [`super::EquiangularModel`],
//! `q̄ = (N p/s² − 1)/(N − 1)`; their mean square is `Q = ⟨q_ij²⟩_{i≠j}`. The extra order
//! parameter is the eigenvalue variance of the Gram matrix `Ξ = (q_ij)` off its common mode,
//! `S = Σ_k δ_k² / (N(N − 1))`:
//!
//! * free frame (N < d): `S = Q − q̄²`;
//! * full frame (N ≥ d, the orthogonal parts live in d − 1 ≤ N − 1 dimensions, so Ξ has a zero
//!   eigenvalue and its other eigenvalues average `N/(N − 1)`): `S = Q − 1/(N − 1)²`.
//!
//! **Loss.** Expanding `K(ρ_ij)`, `ρ_ij = m² + s² q_ij`, around the mean overlap ρ̄ (exact for a
//! degree-2 student),
//! `L = L_N(m, p, a) + (a²/4)(1 − 1/N) K''(ρ̄) s⁴ D`, `D = Q − q̄²`
//! (`D = S` free, `D = S + 1/(N−1)² − q̄²` full frame).
//!
//! **Flow.** Moving m at fixed ξ is the tangent direction of the sphere, so the D term adds
//! `dm/dt += (1 − 1/N) a² m s⁴ D [K'' − ½(1 − q̄) s² K''']`, `da/dt += −ε (a/2)(1 − 1/N) K'' s⁴ D`.
//! The population flow of the ξ_j (first order in the spread, K' linear around ρ̄) is
//! `dΞ/dt = −(2a²K''s²/N)[Ξ² − ⟨μ²⟩ Ξ]` off the common mode, so each eigenvalue deviation relaxes
//! at `2a²K''s²μ̄/N`, `μ̄ = N/(N − 1)`: `dS/dt = −4a²K''(ρ̄)s² S/(N − 1)` (rate O(1/N)).
//!
//! **SGD noise** (`λ = ηd/B`). The idiosyncratic kicks make each `q_ij` diffuse: with
//! `ε_j = e σ'(u_j)` (e the residual) and `g_i = ξ_i·x`,
//! `Var(Δq_ij) = (η²a²/(s²B)) W`, `W = E[(ε_j g_i + ε_i g_j)²] = 2V + 2s² V₂`,
//! `V = E[e²σ'(u)²]`, `V₂ = E[e²(E_g σ''(u))²]` (Stein's lemma for the cross term), i.e.
//! `dS/dt += (λa²/(d s²)) W` (O(λ/d) per pair), plus the Itô drift of the shared kicks
//! `E[Δq_ij] ∝ λa²(C(q_ij) − V q_ij)/s²`, `C(q) = V_c + s²V₂ q + …`:
//!
//! * free frame: `dS/dt += (λa²/s²)[W/d + 2(s²V₂ − V) S]` (the common push of q̄ cancels in
//!   `Q − q̄²`);
//! * full frame: `dS/dt = dQ/dt += (λa²/s²)[W/d + 2q̄V_c + 2(s²V₂ − V)(S + 1/(N−1)²)]` (the common
//!   push cannot raise the zero eigenvalue; it lowers Q by `2q̄V_c`, about half the diffusion).
//!
//! Balance: `S ~ λN/d` — negligible for N ≪ d, O(λ) when N ~ d, and not vanishing as N = d → ∞ at
//! fixed λ (relative to the 1/N self-interaction it grows like N).
//!
//! This leading-order feed is 10–60 % low against one-step SGD Monte Carlo at N = 16–64 (the
//! diffusion and the shared push nearly cancel, amplifying their O(1/N), O(1/d) corrections).
//! For N = d the model uses instead the exact one-step contraction at the regular simplex
//! ([`super::spread_feed`]) plus the leading-order terms in the departures from it
//! ([`SpreadModel::noise_feed`]; within 1–3 % of the Monte Carlo, tests in `spread_feed_tests.rs`).
//! The free-frame feed (N < d) is not validated (one check off by an order of magnitude,
//! unexplained).
//!
//! The residual includes the finite-N fluctuation of the output: `e² → ē(z)² + Φ₂`,
//! `Φ₂ = E[f²] − E[f̄²] = a²[K(1)/N + (1 − 1/N)(K(ρ̄) + ½K''s⁴D) − K(m² + p)]`, taken
//! independent of the neuron's own Gaussians (O(1/N) error). The per-neuron Itô term
//! `dm/dt += −(λ/2)a²mV` and the common-mode feed `dp/dt += λa²(V_c − pV)` are those of
//! [`super::EquiangularModel::with_noise`] with these variances.
//!
//! Not included (measured smaller, see the docs): the spread of the alignments m_j and of the
//! second-layer weights a_j (O(λ/d) with O(1) weight in the loss, versus O(λN/d) here).

use super::finite_width::EquiangularModel;
use super::hermite::{hermite_values, GaussHermite, HermiteSeries};
use super::integrate_order_parameters;
use super::spread_feed::SimplexFeedRule;
use crate::train::ode::from_fn;
use crate::{Error, Result};

/// The (m, p, a, S) system: [`EquiangularModel`] plus the pair-overlap spread S, with SGD noise.
#[derive(Debug, Clone)]
pub struct SpreadModel {
    /// The equiangular (m, p, a) population flow (its own noise must be off).
    pub base: EquiangularModel,
    /// Input dimension d (enters the per-pair noise as λ/d and decides full vs free frame).
    pub dim: f64,
    /// Noise strength `λ = η d / B` (0: population flow).
    pub noise: f64,
    /// Marchenko–Pastur spectrum of the random initial Gram matrix `(μ0_i, weight_i)` (nonzero
    /// part, weights normalised to unit mean) and its total weight; `None`: the linear closure.
    spectrum: Option<(Vec<(f64, f64)>, f64)>,
    /// `σ''` as a Hermite series.
    second: HermiteSeries,
    quad: GaussHermite,
    /// Exact one-step feed at the regular simplex.
    feed_rule: SimplexFeedRule,
}

/// `K^{(n)}(ρ) = Σ_k c_k² k!/(k−n)! ρ^{k−n}`.
pub fn kernel_nth(sigma: &HermiteSeries, n: usize, rho: f64) -> f64 {
    (n..sigma.len())
        .map(|k| {
            let fall: f64 = ((k - n + 1)..=k).map(|i| i as f64).product();
            sigma.c(k).powi(2) * fall * rho.powi((k - n) as i32)
        })
        .sum()
}

/// Hermite series of `σ'`: coefficients `c_{k+1} sqrt(k+1)`.
pub fn derivative_series(sigma: &HermiteSeries) -> HermiteSeries {
    let c: Vec<f64> = (1..sigma.len())
        .map(|k| sigma.c(k) * (k as f64).sqrt())
        .collect();
    HermiteSeries {
        coeffs: if c.is_empty() { vec![0.0] } else { c },
    }
}

/// Noise moments at a state (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoiseMoments {
    /// `V = E[e² σ'(u)²]`.
    pub v: f64,
    /// `V_c = E[e² (E_g σ'(u))²]`.
    pub v_common: f64,
    /// `V₂ = E[e² (E_g σ''(u))²]`.
    pub v2: f64,
    /// Finite-N output variance `Φ₂` added to `ē²`.
    pub phi2: f64,
    /// `V_a = E[e² σ'(u)² (z − m u)²]`: the kick variance of one neuron's alignment.
    pub v_align: f64,
}

impl SpreadModel {
    /// The 4-D model at width `base.width` (finite), input dimension `dim`, noise `λ`.
    pub fn new(base: EquiangularModel, dim: f64, noise: f64) -> Result<Self> {
        if !base.width.is_finite() {
            return Err(Error::config(
                "width",
                "the pair-overlap spread needs a finite width N",
            ));
        }
        if !(dim >= 2.0 && dim.is_finite() && noise >= 0.0 && noise.is_finite()) {
            return Err(Error::config(
                "spread",
                format!("need a finite dim ≥ 2 and noise λ ≥ 0, got d = {dim}, λ = {noise}"),
            ));
        }
        if base.noise != 0.0 {
            return Err(Error::config(
                "spread",
                "pass the noiseless EquiangularModel; the spread model adds the noise itself",
            ));
        }
        let second = derivative_series(&derivative_series(&base.student));
        let deg = base.student.len().max(base.teacher.len()) + base.student.len();
        let quad = GaussHermite::new(deg + 2)?;
        let feed_rule = SimplexFeedRule::new(&base.student, &base.teacher)?;
        Ok(SpreadModel {
            feed_rule,
            base,
            dim,
            noise,
            spectrum: None,
            second,
            quad,
        })
    }
    fn n(&self) -> f64 {
        self.base.width
    }
    /// True if the orthogonal parts fill their space (N ≥ d): Ξ has a zero eigenvalue.
    pub fn full_frame(&self) -> bool {
        self.n() >= self.dim
    }
    /// Mean pair cosine `q̄ = (N p/s² − 1)/(N − 1)` of the orthogonal parts.
    pub fn mean_cosine(&self, m: f64, p: f64) -> f64 {
        let n = self.n();
        (n * p / (1.0 - m * m) - 1.0) / (n - 1.0)
    }
    /// The loss-relevant variance `D = Q − q̄²` from the spread S (see the module docs).
    pub fn overlap_variance(&self, m: f64, p: f64, spread: f64) -> f64 {
        if self.full_frame() {
            let q = self.mean_cosine(m, p);
            spread + 1.0 / (self.n() - 1.0).powi(2) - q * q
        } else {
            spread
        }
    }
    /// The spread S of a measured state: `Q − q̄²` (free) or `Q − 1/(N−1)²` (full frame).
    pub fn spread_of(&self, m: f64, p: f64, mean_sq: f64) -> f64 {
        if self.full_frame() {
            mean_sq - 1.0 / (self.n() - 1.0).powi(2)
        } else {
            mean_sq - self.mean_cosine(m, p).powi(2)
        }
    }
    /// Initial S of the random initialisation (`Q ≈ 1/(d − 1)`, `q̄ ≈ 0`).
    pub fn random_init_spread(&self) -> f64 {
        let q = 1.0 / (self.dim - 1.0);
        if self.full_frame() {
            q - 1.0 / (self.n() - 1.0).powi(2)
        } else {
            q
        }
    }
    /// Population loss with the spread term `(a²/4)(1 − 1/N)K''(ρ̄)s⁴D`.
    pub fn loss(&self, m: f64, p: f64, a: f64, spread: f64) -> f64 {
        let s2 = 1.0 - m * m;
        let rho = self.base.pair_overlap(m, p);
        let w = 1.0 - 1.0 / self.n();
        self.base.loss(m, p, a)
            + 0.25
                * a
                * a
                * w
                * kernel_nth(&self.base.student, 2, rho)
                * s2
                * s2
                * self.overlap_variance(m, p, spread)
    }
    /// Follow the relaxation of the random initial frame exactly in the eigenvalues (instead of
    /// the linear closure): the state gains `u` and the spread is `S = S_lin + S_MP(u)`.
    ///
    /// The noiseless flow moves each Gram eigenvalue by `dμ/dτ = −μ(μ − ⟨μ²⟩)`,
    /// `dτ/dt = 2a²K''(ρ̄)s²/N` (first order in the spread, `R ≈ ⟨R⟩`); this Bernoulli equation
    /// is solved by `μ = μ0/(e^{−u} + μ0 G)` with `du/dτ = ⟨μ²⟩`, and G fixed by the conserved
    /// trace `⟨μ⟩ = 1` (solved by bisection; tracking G by its own ODE `dG/dτ = 1 − ⟨μ²⟩G` is
    /// unstable once the spectrum is flat). The average runs over the initial spectrum:
    /// Marchenko–Pastur with ratio `y = N/(d − 1)` (random unit ξ_j), midpoint rule with `nodes`
    /// points in the angle (weights rescaled to `⟨μ0⟩ = 1`).
    /// `S_MP = (⟨μ²⟩ − 1/w_nz)/(N − 1)`, `w_nz` the nonzero mass, so S_MP → 0 on the flat frame.
    /// `S_lin` starts at 0 and carries the noise.
    pub fn with_random_init_spectrum(mut self, nodes: usize) -> Result<Self> {
        if nodes < 8 {
            return Err(Error::config("spread.nodes", "need ≥ 8 quadrature nodes"));
        }
        let y = self.n() / (self.dim - 1.0);
        let (lo, hi) = ((1.0 - y.sqrt()).powi(2), (1.0 + y.sqrt()).powi(2));
        // x = lo + (hi − lo)(1 − cos θ)/2, density sqrt((hi−x)(x−lo))/(2π y x): midpoint rule in θ.
        let h = std::f64::consts::PI / nodes as f64;
        let mut pts: Vec<(f64, f64)> = (0..nodes)
            .map(|i| {
                let th = (i as f64 + 0.5) * h;
                let x = lo + 0.5 * (hi - lo) * (1.0 - th.cos());
                let wgt =
                    (0.5 * (hi - lo) * th.sin()).powi(2) / (2.0 * std::f64::consts::PI * y * x) * h;
                (x, wgt)
            })
            .collect();
        let m1: f64 = pts.iter().map(|(x, w)| x * w).sum();
        pts.iter_mut().for_each(|(_, w)| *w /= m1);
        let mass = pts.iter().map(|(_, w)| w).sum();
        self.spectrum = Some((pts, mass));
        Ok(self)
    }
    /// Number of state variables `[m, p, a, S_lin, V_m (, u)]`: 5, or 6 with the initial-spectrum
    /// transient.
    pub fn state_len(&self) -> usize {
        if self.spectrum.is_some() {
            6
        } else {
            5
        }
    }
    /// `(⟨μ²⟩, S_MP)` of the relaxing initial spectrum at `u` (zeros without it).
    pub fn spectral_spread(&self, u: f64) -> (f64, f64) {
        let Some((pts, mass)) = &self.spectrum else {
            return (0.0, 0.0);
        };
        let eu = (-u).exp();
        let m1 = |g: f64| pts.iter().map(|(x, w)| w * x / (eu + x * g)).sum::<f64>();
        // ⟨μ⟩ decreases in G from 1/e^{−u} ≥ 1 at G = 0 to ≤ 1 at G = mass.
        let (mut lo, mut hi) = (0.0, *mass);
        for _ in 0..60 {
            let mid = 0.5 * (lo + hi);
            if m1(mid) > 1.0 {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let g = 0.5 * (lo + hi);
        let m2: f64 = pts
            .iter()
            .map(|(x, w)| w * (x / (eu + x * g)).powi(2))
            .sum();
        (m2, (m2 - 1.0 / mass) / (self.n() - 1.0))
    }
    /// Initial state from the random initialisation: `[m0, (1 − m0²)/N, a0, S0, 0]` with S0 the
    /// random spread for the linear closure, or `[m0, p0, a0, 0, 0, 0]` with the spectrum (which
    /// carries it); all alignments start equal (`V_m = 0`).
    pub fn random_init_state(&self, m0: f64, a0: f64) -> Vec<f64> {
        let p0 = (1.0 - m0 * m0) / self.n();
        if self.spectrum.is_some() {
            vec![m0, p0, a0, 0.0, 0.0, 0.0]
        } else {
            vec![m0, p0, a0, self.random_init_spread(), 0.0]
        }
    }
    /// `V, V_c, V₂, Φ₂` by a 3-D Gauss–Hermite rule over z, the common direction and g.
    pub fn noise_moments(&self, m: f64, p: f64, a: f64, spread: f64) -> NoiseMoments {
        let st = &self.base.student;
        let n = self.n();
        let b = (m * m + p).max(1e-300);
        let s2 = 1.0 - m * m;
        let rho = self.base.pair_overlap(m, p);
        let dvar = self.overlap_variance(m, p, spread);
        let phi2 = (a
            * a
            * (st.kernel(1.0) / n
                + (1.0 - 1.0 / n)
                    * (st.kernel(rho) + 0.5 * kernel_nth(st, 2, rho) * s2 * s2 * dvar)
                - st.kernel(b)))
        .max(0.0);
        let sp = p.max(0.0).sqrt();
        let si = (1.0 - m * m - p).max(0.0).sqrt();
        let sb = b.sqrt();
        let ns = st.len();
        let fitted: Vec<f64> = (0..ns)
            .map(|k| a * st.c(k) * b.powf(k as f64 / 2.0))
            .collect();
        let mut h = vec![0.0; ns];
        let q = &self.quad;
        let (mut v, mut vc, mut v2, mut va) = (0.0, 0.0, 0.0, 0.0);
        for (z, wz) in q.nodes.iter().zip(&q.weights) {
            let y = self.base.teacher.value(*z);
            for (zeta, wy) in q.nodes.iter().zip(&q.weights) {
                let ubar = m * z + sp * zeta;
                hermite_values(ubar / sb, &mut h);
                let f: f64 = fitted.iter().zip(&h).map(|(c, hk)| c * hk).sum();
                let e2 = (f - y).powi(2) + phi2;
                let (mut d1, mut d2, mut dd, mut dz) = (0.0, 0.0, 0.0, 0.0);
                for (g, wg) in q.nodes.iter().zip(&q.weights) {
                    let u = ubar + si * g;
                    let (_, ds) = st.value_and_derivative(u);
                    d1 += wg * ds;
                    d2 += wg * ds * ds;
                    dd += wg * self.second.value(u);
                    dz += wg * (ds * (z - m * u)).powi(2);
                }
                va += wz * wy * e2 * dz;
                v += wz * wy * e2 * d2;
                vc += wz * wy * e2 * d1 * d1;
                v2 += wz * wy * e2 * dd * dd;
            }
        }
        NoiseMoments {
            v,
            v_common: vc,
            v2,
            phi2,
            v_align: va,
        }
    }
    /// Right-hand side `(dm/dt, dp/dt, da/dt, dS/dt)` of the 4-D (linear-closure) model
    /// (no alignment spread).
    pub fn rhs(&self, m: f64, p: f64, a: f64, spread: f64) -> [f64; 4] {
        let r = self.rhs_total(m, p, a, spread, spread, 0.0);
        [r[0], r[1], r[2], r[3]]
    }
    /// Right-hand side for a state `[m, p, a, S_lin, V_m (, u)]` of
    /// [`SpreadModel::state_len`] variables.
    pub fn rhs_state(&self, y: &[f64], dy: &mut [f64]) {
        let (m2, s_mp) = self.spectral_spread(y.get(5).copied().unwrap_or(0.0));
        let r = self.rhs_total(y[0], y[1], y[2], y[3], y[3] + s_mp, y[4]);
        dy[..5].copy_from_slice(&r);
        if self.spectrum.is_some() {
            let c = 2.0
                * y[2]
                * y[2]
                * kernel_nth(&self.base.student, 2, self.base.pair_overlap(y[0], y[1]))
                * (1.0 - y[0] * y[0])
                / self.n();
            dy[5] = c * m2;
        }
    }
    /// Total spread `S` of a state (`S_lin + S_MP`).
    pub fn total_spread(&self, y: &[f64]) -> f64 {
        y[3] + self.spectral_spread(y.get(5).copied().unwrap_or(0.0)).1
    }
    /// Drift of one neuron's alignment x when all others sit at m (q̄ → 0, p → 0):
    /// `F(x) = a g'(x)(1 − x²) − a²(1 − 1/N) K'(x m) m (1 − x²)`.
    fn single_neuron_drift(&self, x: f64, m: f64, a: f64) -> f64 {
        let w = 1.0 - 1.0 / self.n();
        a * self.base.g(x).1 * (1.0 - x * x)
            - a * a * w * self.base.student.kernel_derivative(x * m) * m * (1.0 - x * x)
    }
    /// Mean-drift corrections of the alignment spread `V_m = Var(m_j)` (second order):
    /// `(dm̄/dt, da/dt / ε, F'(m))`: `½F''(m)V_m − ½a²(1 − 1/N) ∂_y²[K'(y m)(y − y m²)] V_m`,
    /// `½g''(m)V_m − a(1 − 1/N)K''(m²)m²V_m`, and the self-restoring slope `F'(m)` (central
    /// differences of the closed-form single-neuron drift, step 1e-4).
    pub fn alignment_spread_terms(&self, m: f64, a: f64, vm: f64) -> (f64, f64, f64) {
        let h = 1e-4;
        let f = |x: f64| self.single_neuron_drift(x, m, a);
        let (f0, fp, fm) = (f(m), f(m + h), f(m - h));
        let f1 = (fp - fm) / (2.0 * h);
        let f2 = (fp - 2.0 * f0 + fm) / (h * h);
        let gy = |y: f64| self.base.student.kernel_derivative(y * m) * (y - y * m * m);
        let g2 = (gy(m + h) - 2.0 * gy(m) + gy(m - h)) / (h * h);
        let w = 1.0 - 1.0 / self.n();
        let gpp = {
            let gg = |x: f64| self.base.g(x).0;
            (gg(m + h) - 2.0 * gg(m) + gg(m - h)) / (h * h)
        };
        let dm = 0.5 * f2 * vm - 0.5 * a * a * w * g2 * vm;
        let da = 0.5 * gpp * vm - a * w * kernel_nth(&self.base.student, 2, m * m) * m * m * vm;
        (dm, da, f1)
    }
    /// `(dm, dp, da, dS_lin, dV_m)` with `spread` the total S, `lin` the part the linear closure
    /// relaxes, `vm` the alignment spread.
    fn rhs_total(&self, m: f64, p: f64, a: f64, lin: f64, spread: f64, vm: f64) -> [f64; 5] {
        let n = self.n();
        let (mut dm, mut dp, mut da) = self.base.rhs(m, p, a);
        let s2 = 1.0 - m * m;
        let rho = self.base.pair_overlap(m, p);
        let qbar = self.mean_cosine(m, p);
        let dvar = self.overlap_variance(m, p, spread);
        let k2 = kernel_nth(&self.base.student, 2, rho);
        let k3 = kernel_nth(&self.base.student, 3, rho);
        let w = 1.0 - 1.0 / n;
        dm += w * a * a * m * s2 * s2 * dvar * (k2 - 0.5 * (1.0 - qbar) * s2 * k3);
        da -= self.base.eps * 0.5 * a * w * k2 * s2 * s2 * dvar;
        let mut ds = -4.0 * a * a * k2 * s2 * lin / (n - 1.0);
        let (dm_v, da_v, f1) = self.alignment_spread_terms(m, a, vm);
        dm += dm_v;
        da += self.base.eps * da_v;
        let mut dv = 2.0 * f1 * vm;
        if self.noise != 0.0 {
            let nm = self.noise_moments(m, p, a, spread);
            let lam = self.noise;
            dm -= 0.5 * lam * a * a * m * nm.v;
            dp += lam * a * a * (nm.v_common - p * nm.v);
            ds += self.noise_feed(m, p, a, spread, &nm);
            dv += lam / self.dim * a * a * nm.v_align;
        }
        [dm, dp, da, ds, dv]
    }
    /// The leading-order noise feed of S (step 16 before the exact simplex contraction):
    /// `(λa²/s²)[W/d + 2(s²V₂ − V)S]` (free frame) or
    /// `(λa²/s²)[W/d + 2q̄V_c + 2(s²V₂ − V)(S + 1/(N−1)²)]` (full frame), `W = 2V + 2s²V₂`.
    /// Kept as the record of what the O(1/N), O(1/d) terms change (10–60 % at N = 16–64).
    pub fn leading_order_feed(&self, m: f64, p: f64, a: f64, spread: f64) -> f64 {
        let nm = self.noise_moments(m, p, a, spread);
        let s2 = 1.0 - m * m;
        let n = self.n();
        let wdiff = 2.0 * nm.v + 2.0 * s2 * nm.v2;
        let rate = 2.0 * (s2 * nm.v2 - nm.v);
        let mut feed = wdiff / self.dim + rate * spread;
        if self.full_frame() {
            feed += 2.0 * self.mean_cosine(m, p) * nm.v_common + rate / (n - 1.0).powi(2);
        }
        self.noise * a * a / s2 * feed
    }
    /// The noise feed of S per unit time. Full frame with N = d: the exact one-step
    /// contraction at the regular simplex (`(λ/d) F`, [`SimplexFeedRule`]) plus the
    /// leading-order terms in the departures from it,
    /// `(λa²/s²)(1 − 1/d)[2(q̄ + 1/(N−1))V_c + 2(s²V₂ − V)S]`. Otherwise (free frame, or N > d)
    /// the leading-order feed ([`SpreadModel::leading_order_feed`]).
    pub fn noise_feed(&self, m: f64, p: f64, a: f64, spread: f64, nm: &NoiseMoments) -> f64 {
        if self.noise == 0.0 {
            return 0.0;
        }
        let n = self.n();
        if self.n() != self.dim {
            return self.leading_order_feed(m, p, a, spread);
        }
        let s2 = 1.0 - m * m;
        let simplex = match self.feed_rule.eval(n, m, a) {
            Ok(f) => f.feed,
            Err(_) => return self.leading_order_feed(m, p, a, spread),
        };
        let dq = self.mean_cosine(m, p) + 1.0 / (n - 1.0);
        let departures = 2.0 * dq * nm.v_common + 2.0 * (s2 * nm.v2 - nm.v) * spread;
        self.noise / self.dim * simplex
            + self.noise * a * a / s2 * (1.0 - 1.0 / self.dim) * departures
    }
    /// Integrate from `y0` ([`SpreadModel::state_len`] values, `[m0, p0, a0, S0 (, u0, G0)]`);
    /// returns the states at `save_at` (sorted, ≥ 0).
    pub fn integrate(&self, y0: &[f64], save_at: &[f64], rtol: f64) -> Result<Vec<Vec<f64>>> {
        if y0.len() != self.state_len() {
            return Err(Error::config(
                "spread.init",
                format!("need {} initial values, got {}", self.state_len(), y0.len()),
            ));
        }
        let (m0, p0, s0, v0) = (y0[0], y0[1], y0[3], y0[4]);
        if !(m0 > -1.0 && m0 < 1.0 && p0 >= 0.0 && m0 * m0 + p0 <= 1.0 && s0 >= 0.0 && v0 >= 0.0) {
            return Err(Error::config(
                "spread.init",
                format!("need |m0| < 1, p0 ≥ 0, m0² + p0 ≤ 1, S0 ≥ 0, V_m ≥ 0; got {y0:?}"),
            ));
        }
        let mut field = from_fn(self.state_len(), |_t, y: &[f64], dy: &mut [f64]| {
            self.rhs_state(y, dy);
            Ok(())
        });
        integrate_order_parameters(&mut field, rtol, y0, save_at, 50_000_000)
    }
}
