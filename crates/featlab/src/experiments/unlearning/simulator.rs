//! Finite-width ground truth for the unlearning model: a two-layer network
//! `f(x) = N^{−γ} Σ_j a_j σ(w_j·x)` on Gaussian inputs `x ~ N(0, I_d)` with a single-index
//! teacher `y = σ*(x_0)` (θ* = e_0 without loss of generality: the Gaussian is rotation
//! invariant), trained by large-batch SGD (fresh samples each step or a fixed dataset), by
//! gradient descent on the exact population loss, or by the population gradient flow
//! ([`ParticleFlow`]).
//!
//! Learning rates are chosen so that every parametrization γ has the same limit in the
//! *effective* second-layer weight `ã_j = N^{1−γ} a_j`: first layer `η N`, second layer
//! `ε η N^{2γ−1}`; time `t = η × steps`. Mean-field and μP (two-layer readout `1/N`) are
//! γ = 1; NTK is γ = ½, whose `O(1)` initial `a_j` is the effective `ã_0 = √N a_0 → ∞`.
//!
//! Spherical first layer: the gradient is projected on the tangent space of the unit sphere
//! and each `w_j` renormalised after the step (projected SGD). The exact population loss of
//! unit-norm neurons is (Hermite identities, see [`super::hermite`])
//!
//! `L = ½Σc*_k² − N^{−γ} Σ_j a_j g(m_j) + ½ N^{−2γ} Σ_{ij} a_i a_j K(w_i·w_j)`,
//! `g(m) = Σ c*_k c_k m^k`, `K(ρ) = Σ c_k² ρ^k`.

use crate::linalg::{matmul, view, view_mut};
use crate::rng::{normal, permutation, stream, Rng};
use crate::theory::unlearning::hermite::{GaussHermite, HermiteSeries};
use crate::train::ode::VectorField;
use crate::{Error, Result};
use faer::{Accum, Par};
use serde::{Deserialize, Serialize};

/// How gradients are estimated.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum BatchMode {
    /// Fresh Gaussian samples every step (one-pass / online SGD), batch size `batch`.
    Online { batch: usize },
    /// A fixed training set of `samples` points, minibatches of `batch` (epoch permutations).
    Fixed { samples: usize, batch: usize },
    /// Exact population gradient (B = ∞; spherical first layer only).
    Population,
}

/// Configuration of the finite-width simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Number of neurons N.
    pub width: usize,
    /// Input dimension d.
    pub dim: usize,
    pub student: HermiteSeries,
    pub teacher: HermiteSeries,
    /// Initial overlap of every neuron with θ*.
    pub m0: f64,
    /// Initial effective second-layer weight `ã_0` (every `a_j = ã_0 N^{γ−1}`).
    pub a0: f64,
    /// Step size η (time per step).
    pub lr: f64,
    /// Second-/first-layer learning-rate ratio ε.
    pub eps: f64,
    /// Output exponent γ (1 mean-field/μP, ½ NTK).
    pub gamma: f64,
    pub batch: BatchMode,
    /// Project the first layer on the unit sphere (else unconstrained SGD).
    pub spherical: bool,
    /// Make the orthogonal parts ξ_j exactly orthonormal (needs N ≤ d − 1).
    pub orthogonal_init: bool,
}

/// Order parameters of a finite network.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct OrderParams {
    /// Mean cosine `m = ⟨w_j·θ*/|w_j|⟩`.
    pub m: f64,
    /// Standard deviation of the cosines over neurons.
    pub m_std: f64,
    /// Mean effective second-layer weight `⟨N^{1−γ} a_j⟩`.
    pub a: f64,
    pub a_std: f64,
    /// Mean first-layer norm `⟨|w_j|⟩`.
    pub w_norm: f64,
    /// Squared common orthogonal component `p = |⟨ŵ_j⟩ − m e_0|²` of the unit rows ŵ_j
    /// (0 for a simplex of orthogonal parts, ≈ (1 − m²)/N for random ones).
    pub common_sq: f64,
    /// Mean squared pair overlap of the orthogonal parts, `⟨(ξ_i·ξ_j)²⟩_{i≠j}`,
    /// `ξ_j = (ŵ_j − m_j e_0)/|·|` (≈ 1/d for random ξ, 1/(N−1)² for a simplex).
    pub pair_q2: f64,
    /// Exact population loss.
    pub loss: f64,
}

/// The finite-width network and its training state.
pub struct Simulator {
    pub cfg: SimConfig,
    /// First layer, N×d row-major.
    pub w: Vec<f64>,
    /// Second layer (raw `a_j`).
    pub a: Vec<f64>,
    pub steps: u64,
    rng: Rng,
    data: Option<(Vec<f64>, Vec<f64>)>,
    perm: Vec<usize>,
    cursor: usize,
    // workspaces
    x: Vec<f64>,
    y: Vec<f64>,
    u: Vec<f64>,
    s: Vec<f64>,
    e: Vec<f64>,
    gw: Vec<f64>,
    ga: Vec<f64>,
    quad: GaussHermite,
    act: RowEvaluator,
}

impl SimConfig {
    /// Validate ranges; errors name the `simulation.*` key.
    pub fn validate(&self) -> Result<()> {
        let k = |s: &str| format!("simulation.{s}");
        if self.width == 0 {
            return Err(Error::config(k("width"), "must be ≥ 1"));
        }
        if self.dim < 2 {
            return Err(Error::config(
                k("dim"),
                "must be ≥ 2 (θ* plus orthogonal directions)",
            ));
        }
        if !(self.m0 > -1.0 && self.m0 < 1.0) {
            return Err(Error::config(
                "m0",
                format!("initial alignment must lie in (−1, 1), got {}", self.m0),
            ));
        }
        for (name, v) in [
            ("lr", self.lr),
            ("eps", self.eps),
            ("gamma", self.gamma),
            ("a0", self.a0),
        ] {
            if !v.is_finite() {
                return Err(Error::config(name, format!("must be finite, got {v}")));
            }
        }
        if self.lr <= 0.0 || self.eps < 0.0 {
            return Err(Error::config(k("lr"), "lr must be > 0 and eps ≥ 0"));
        }
        match self.batch {
            BatchMode::Online { batch } | BatchMode::Fixed { batch, .. } if batch == 0 => {
                return Err(Error::config(k("batch.batch"), "batch size must be ≥ 1"));
            }
            BatchMode::Fixed { samples: 0, .. } => {
                return Err(Error::config(k("batch.samples"), "must be ≥ 1"))
            }
            BatchMode::Population if !self.spherical => {
                return Err(Error::config(k("batch"), "the exact population gradient is implemented for the spherical first layer only"));
            }
            _ => {}
        }
        if self.orthogonal_init && self.width > self.dim - 1 {
            return Err(Error::config(
                k("orthogonal_init"),
                format!("needs width ≤ dim − 1 ({} > {})", self.width, self.dim - 1),
            ));
        }
        Ok(())
    }
    fn batch_size(&self) -> usize {
        match self.batch {
            BatchMode::Online { batch } | BatchMode::Fixed { batch, .. } => batch,
            BatchMode::Population => 0,
        }
    }
}

/// Symmetric initialisation: `w_j = m0 e_0 + sqrt(1−m0²) ξ_j`, ξ_j random unit vectors ⟂ e_0
/// (Gram–Schmidt-orthonormalised if requested), `a_j = ã_0 N^{γ−1}`.
pub fn symmetric_init(cfg: &SimConfig, rng: &mut Rng) -> (Vec<f64>, Vec<f64>) {
    let (n, d) = (cfg.width, cfg.dim);
    let mut xi = vec![0.0; n * d];
    for j in 0..n {
        for i in 1..d {
            xi[j * d + i] = normal(rng);
        }
        if cfg.orthogonal_init {
            for l in 0..j {
                let p: f64 = (1..d).map(|i| xi[j * d + i] * xi[l * d + i]).sum();
                for i in 1..d {
                    xi[j * d + i] -= p * xi[l * d + i];
                }
            }
        }
        let nrm = (1..d).map(|i| xi[j * d + i].powi(2)).sum::<f64>().sqrt();
        for i in 1..d {
            xi[j * d + i] /= nrm;
        }
    }
    let s = (1.0 - cfg.m0 * cfg.m0).sqrt();
    let mut w = vec![0.0; n * d];
    for j in 0..n {
        w[j * d] = cfg.m0;
        for i in 1..d {
            w[j * d + i] = s * xi[j * d + i];
        }
    }
    let a = vec![cfg.a0 * (n as f64).powf(cfg.gamma - 1.0); n];
    (w, a)
}

/// Hermite coefficients of `z ↦ σ(s z)` (exact for polynomial σ with a rule of ≥ deg+1 points).
pub fn rescaled_coeffs(sigma: &HermiteSeries, s: f64, quad: &GaussHermite) -> Vec<f64> {
    let n = sigma.len();
    let mut h = vec![0.0; n];
    let mut out = vec![0.0; n];
    for (z, wt) in quad.nodes.iter().zip(&quad.weights) {
        let v = sigma.value(s * z);
        crate::theory::unlearning::hermite::hermite_values(*z, &mut h);
        for k in 0..n {
            out[k] += wt * v * h[k];
        }
    }
    out
}

/// Exact population loss of a finite network with arbitrary first-layer norms:
/// `E[σ(w_i·x)σ(w_j·x)] = Σ_k c_k(|w_i|) c_k(|w_j|) ρ̂_ij^k` with `c_k(s)` the coefficients of
/// `σ(s·)` and ρ̂ the cosine, `E[y σ(w_j·x)] = Σ_k c*_k c_k(|w_j|) m̂_j^k`.
pub fn population_loss(cfg: &SimConfig, w: &[f64], a: &[f64], quad: &GaussHermite) -> f64 {
    let (n, d) = (cfg.width, cfg.dim);
    let norms: Vec<f64> = (0..n)
        .map(|j| {
            w[j * d..(j + 1) * d]
                .iter()
                .map(|v| v * v)
                .sum::<f64>()
                .sqrt()
        })
        .collect();
    let coefs: Vec<Vec<f64>> = norms
        .iter()
        .map(|s| rescaled_coeffs(&cfg.student, *s, quad))
        .collect();
    let mut gram = vec![0.0; n * n];
    matmul(
        view_mut(&mut gram, n, n),
        Accum::Replace,
        view(w, n, d),
        view(w, n, d).transpose(),
        1.0,
        Par::Seq,
    );
    let scale = (n as f64).powf(-cfg.gamma);
    let kmax = cfg.student.len();
    let mut loss = 0.5 * cfg.teacher.coeffs.iter().map(|c| c * c).sum::<f64>();
    let mut pw = vec![0.0; kmax];
    for j in 0..n {
        let mh = w[j * d] / norms[j];
        let g: f64 = (0..kmax)
            .map(|k| cfg.teacher.c(k) * coefs[j][k] * mh.powi(k as i32))
            .sum();
        loss -= scale * a[j] * g;
        for i in 0..n {
            let rho = (gram[i * n + j] / (norms[i] * norms[j])).clamp(-1.0, 1.0);
            let mut r = 1.0;
            for p in pw.iter_mut() {
                *p = r;
                r *= rho;
            }
            let kern: f64 = (0..kmax).map(|k| coefs[i][k] * coefs[j][k] * pw[k]).sum();
            loss += 0.5 * scale * scale * a[i] * a[j] * kern;
        }
    }
    loss
}

/// Exact population gradient of unit-norm neurons (tangent part is what matters):
/// `∂L/∂w_j = −N^{−γ} a_j g'(m_j) e_0 + N^{−2γ} a_j Σ_i a_i K'(ρ_ij) w_i`,
/// `∂L/∂a_j = −N^{−γ} g(m_j) + N^{−2γ} Σ_i a_i K(ρ_ij)`. `w` rows must be unit vectors.
pub fn population_gradient(
    cfg: &SimConfig,
    w: &[f64],
    a: &[f64],
    gw: &mut [f64],
    ga: &mut [f64],
    par: Par,
) {
    population_loss_and_gradient(cfg, w, a, gw, ga, par);
}

/// [`population_gradient`], returning the population loss of the unit-norm rows
/// `L = ½Σc*_k² + Σ_j a_j (−N^{−γ} g(m_j) + ½ N^{−2γ} Σ_i a_i K(ρ_ij))` from the same sums
/// (the gradient is computed by the same operations, so it is bitwise that of
/// [`population_gradient`]).
pub fn population_loss_and_gradient(
    cfg: &SimConfig,
    w: &[f64],
    a: &[f64],
    gw: &mut [f64],
    ga: &mut [f64],
    par: Par,
) -> f64 {
    let (n, d) = (cfg.width, cfg.dim);
    let mut gram = vec![0.0; n * n];
    matmul(
        view_mut(&mut gram, n, n),
        Accum::Replace,
        view(w, n, d),
        view(w, n, d).transpose(),
        1.0,
        par,
    );
    let s1 = (n as f64).powf(-cfg.gamma);
    let s2 = s1 * s1;
    let g_t: Vec<f64> = (0..cfg.student.len().max(cfg.teacher.len()))
        .map(|k| cfg.teacher.c(k) * cfg.student.c(k))
        .collect();
    let mut q = vec![0.0; n * n];
    let mut loss = 0.5 * cfg.teacher.coeffs.iter().map(|c| c * c).sum::<f64>();
    for j in 0..n {
        let mut ksum = 0.0;
        for i in 0..n {
            let rho = gram[j * n + i];
            ksum += a[i] * cfg.student.kernel(rho);
            q[j * n + i] = a[i] * cfg.student.kernel_derivative(rho);
        }
        let m = w[j * d];
        let gm = crate::theory::unlearning::hermite::poly(&g_t, m);
        ga[j] = -s1 * gm + s2 * ksum;
        loss += a[j] * (-s1 * gm + 0.5 * s2 * ksum);
    }
    matmul(
        view_mut(gw, n, d),
        Accum::Replace,
        view(&q, n, n),
        view(w, n, d),
        1.0,
        par,
    );
    for j in 0..n {
        let m = w[j * d];
        let dg: f64 = g_t
            .iter()
            .enumerate()
            .skip(1)
            .map(|(k, c)| k as f64 * c * m.powi(k as i32 - 1))
            .sum();
        for i in 0..d {
            gw[j * d + i] *= s2 * a[j];
        }
        gw[j * d] -= s1 * a[j] * dg;
    }
    loss
}

/// `σ(u_j)` and `σ'(u_j)` for a whole row of pre-activations, by the same three-term recurrence
/// and the same floating-point operations as [`HermiteSeries::value_and_derivative`] (so the
/// results are bitwise identical), with `sqrt k` precomputed and the loop over neurons innermost
/// (vectorisable).
pub(crate) struct RowEvaluator {
    /// `c_k`.
    c: Vec<f64>,
    /// `c_k sqrt(k)`.
    c_sqrt: Vec<f64>,
    /// `sqrt(k)` for k = 0..=len.
    sqrt: Vec<f64>,
    h: Vec<f64>,
    hm1: Vec<f64>,
}

impl RowEvaluator {
    pub(crate) fn new(sigma: &HermiteSeries, width: usize) -> Self {
        let n = sigma.len();
        RowEvaluator {
            c: sigma.coeffs.clone(),
            c_sqrt: (0..n)
                .map(|k| sigma.coeffs[k] * (k as f64).sqrt())
                .collect(),
            sqrt: (0..=n).map(|k| (k as f64).sqrt()).collect(),
            h: vec![0.0; width],
            hm1: vec![0.0; width],
        }
    }
    pub(crate) fn eval(&mut self, u: &[f64], val: &mut [f64], der: &mut [f64]) {
        let (h, hm1) = (&mut self.h[..u.len()], &mut self.hm1[..u.len()]);
        h.iter_mut().for_each(|x| *x = 1.0);
        hm1.iter_mut().for_each(|x| *x = 0.0);
        val.iter_mut().for_each(|x| *x = 0.0);
        der.iter_mut().for_each(|x| *x = 0.0);
        let n = self.c.len();
        for k in 0..n {
            let c = self.c[k];
            for (v, hj) in val.iter_mut().zip(h.iter()) {
                *v += c * *hj;
            }
            if k > 0 {
                let cs = self.c_sqrt[k];
                for (d, hm) in der.iter_mut().zip(hm1.iter()) {
                    *d += cs * *hm;
                }
            }
            if k + 1 < n {
                let (sk, sk1) = (self.sqrt[k], self.sqrt[k + 1]);
                for ((hj, hm), z) in h.iter_mut().zip(hm1.iter_mut()).zip(u) {
                    let hn = (z * *hj - sk * *hm) / sk1;
                    *hm = *hj;
                    *hj = hn;
                }
            }
        }
    }
}

fn project_tangent(w: &[f64], g: &mut [f64], d: usize) {
    for (wj, gj) in w.chunks_exact(d).zip(g.chunks_exact_mut(d)) {
        let p: f64 = wj.iter().zip(gj.iter()).map(|(a, b)| a * b).sum();
        let nn: f64 = wj.iter().map(|v| v * v).sum();
        for (gi, wi) in gj.iter_mut().zip(wj) {
            *gi -= p / nn * wi;
        }
    }
}

impl Simulator {
    /// Initialise (symmetric init from stream `"init"`, data/batches from `"data"`/`"batches"`).
    pub fn new(cfg: SimConfig, seed: u64) -> Result<Self> {
        cfg.validate()?;
        let (w, a) = symmetric_init(&cfg, &mut stream(seed, "init"));
        let (n, d, b) = (cfg.width, cfg.dim, cfg.batch_size());
        let data = match cfg.batch {
            BatchMode::Fixed { samples, .. } => {
                let mut r = stream(seed, "data");
                let x: Vec<f64> = (0..samples * d).map(|_| normal(&mut r)).collect();
                let y: Vec<f64> = (0..samples).map(|i| cfg.teacher.value(x[i * d])).collect();
                Some((x, y))
            }
            _ => None,
        };
        let quad = GaussHermite::new(2 * cfg.student.len().max(cfg.teacher.len()) + 8)?;
        Ok(Simulator {
            w,
            a,
            steps: 0,
            rng: stream(seed, "batches"),
            data,
            perm: Vec::new(),
            cursor: usize::MAX,
            x: vec![0.0; b * d],
            y: vec![0.0; b],
            u: vec![0.0; b * n],
            s: vec![0.0; b * n],
            e: vec![0.0; b * n],
            gw: vec![0.0; n * d],
            ga: vec![0.0; n],
            quad,
            act: RowEvaluator::new(&cfg.student, n),
            cfg,
        })
    }

    /// The last computed gradients `(∂L̂/∂W (N×d row-major), ∂L̂/∂a)`.
    pub fn gradients(&self) -> (&[f64], &[f64]) {
        (&self.gw, &self.ga)
    }
    /// The last minibatch `(x (B×d row-major), y)`.
    pub fn last_batch(&self) -> (&[f64], &[f64]) {
        (&self.x, &self.y)
    }
    /// Gradient-flow time `η × steps`.
    pub fn time(&self) -> f64 {
        self.cfg.lr * self.steps as f64
    }

    fn draw_batch(&mut self) {
        let (d, b) = (self.cfg.dim, self.cfg.batch_size());
        match &self.data {
            None => {
                for v in self.x.iter_mut() {
                    *v = normal(&mut self.rng);
                }
                for i in 0..b {
                    self.y[i] = self.cfg.teacher.value(self.x[i * d]);
                }
            }
            Some((xs, ys)) => {
                let n = ys.len();
                for i in 0..b {
                    if self.cursor >= self.perm.len() {
                        self.perm = permutation(&mut self.rng, n);
                        self.cursor = 0;
                    }
                    let r = self.perm[self.cursor];
                    self.cursor += 1;
                    self.x[i * d..(i + 1) * d].copy_from_slice(&xs[r * d..(r + 1) * d]);
                    self.y[i] = ys[r];
                }
            }
        }
    }

    /// Draw a minibatch and write its gradient `(1/B) Σ_i ∇ ½(f(x_i) − y_i)²` into the
    /// workspaces ([`Simulator::gradients`]); returns the batch loss.
    pub fn minibatch_gradient(&mut self, par: Par) -> f64 {
        let (n, d, b) = (self.cfg.width, self.cfg.dim, self.cfg.batch_size());
        self.draw_batch();
        matmul(
            view_mut(&mut self.u, b, n),
            Accum::Replace,
            view(&self.x, b, d),
            view(&self.w, n, d).transpose(),
            1.0,
            par,
        );
        let scale = (n as f64).powf(-self.cfg.gamma);
        let mut loss = 0.0;
        self.ga.iter_mut().for_each(|v| *v = 0.0);
        for i in 0..b {
            let row = i * n;
            self.act.eval(
                &self.u[row..row + n],
                &mut self.s[row..row + n],
                &mut self.e[row..row + n],
            );
            let mut f = 0.0;
            for j in 0..n {
                f += self.a[j] * self.s[row + j];
            }
            let r = scale * f - self.y[i];
            loss += 0.5 * r * r;
            for j in 0..n {
                self.ga[j] += r * self.s[row + j];
                self.e[row + j] *= r * self.a[j];
            }
        }
        let inv_b = 1.0 / b as f64;
        self.ga.iter_mut().for_each(|v| *v *= scale * inv_b);
        matmul(
            view_mut(&mut self.gw, n, d),
            Accum::Replace,
            view(&self.e, b, n).transpose(),
            view(&self.x, b, d),
            scale * inv_b,
            par,
        );
        loss * inv_b
    }

    /// One SGD / population-GD step: `a_j −= ε η N^{2γ−1} ∂_{a_j}L̂`,
    /// `w_j −= η N P_j ∂_{w_j}L̂` (then renormalised when spherical). Returns the loss at the
    /// start of the step: the minibatch loss, or the population loss for `Population`.
    pub fn step(&mut self, par: Par) -> f64 {
        let (n, d) = (self.cfg.width, self.cfg.dim);
        let loss = match self.cfg.batch {
            BatchMode::Population => {
                let (gw, ga) = (&mut self.gw, &mut self.ga);
                population_loss_and_gradient(&self.cfg, &self.w, &self.a, gw, ga, par)
            }
            _ => self.minibatch_gradient(par),
        };
        let nf = n as f64;
        let lr_w = self.cfg.lr * nf;
        let lr_a = self.cfg.eps * self.cfg.lr * nf.powf(2.0 * self.cfg.gamma - 1.0);
        if self.cfg.spherical {
            project_tangent(&self.w, &mut self.gw, d);
        }
        for (w, g) in self.w.iter_mut().zip(&self.gw) {
            *w -= lr_w * g;
        }
        if self.cfg.spherical {
            for wj in self.w.chunks_exact_mut(d) {
                let nrm = wj.iter().map(|v| v * v).sum::<f64>().sqrt();
                wj.iter_mut().for_each(|v| *v /= nrm);
            }
        }
        for (a, g) in self.a.iter_mut().zip(&self.ga) {
            *a -= lr_a * g;
        }
        self.steps += 1;
        loss
    }

    /// Current order parameters (loss = exact population loss).
    pub fn order_params(&self) -> OrderParams {
        order_params(&self.cfg, &self.w, &self.a, &self.quad)
    }
}

/// Order parameters of `(w, a)` (see [`OrderParams`]).
pub fn order_params(cfg: &SimConfig, w: &[f64], a: &[f64], quad: &GaussHermite) -> OrderParams {
    let (n, d) = (cfg.width, cfg.dim);
    let nf = n as f64;
    let mut ms = Vec::with_capacity(n);
    let mut norm_sum = 0.0;
    for wj in w.chunks_exact(d) {
        let nrm = wj.iter().map(|v| v * v).sum::<f64>().sqrt();
        norm_sum += nrm;
        ms.push(wj[0] / nrm);
    }
    let at: Vec<f64> = a.iter().map(|v| v * nf.powf(1.0 - cfg.gamma)).collect();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let std = |v: &[f64], mu: f64| {
        (v.iter().map(|x| (x - mu).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
    };
    let (m, am) = (mean(&ms), mean(&at));
    // Orthogonal parts ξ_j (unit) and the common component of the unit rows.
    let mut xi = vec![0.0; n * d];
    let mut common = vec![0.0; d];
    for (j, wj) in w.chunks_exact(d).enumerate() {
        let nrm = wj.iter().map(|v| v * v).sum::<f64>().sqrt();
        let perp = wj[1..].iter().map(|v| v * v).sum::<f64>().sqrt();
        for i in 1..d {
            common[i] += wj[i] / nrm / nf;
            xi[j * d + i] = if perp > 0.0 { wj[i] / perp } else { 0.0 };
        }
    }
    let common_sq = common.iter().map(|v| v * v).sum::<f64>();
    let pair_q2 = if n > 1 {
        let mut gram = vec![0.0; n * n];
        matmul(
            view_mut(&mut gram, n, n),
            Accum::Replace,
            view(&xi, n, d),
            view(&xi, n, d).transpose(),
            1.0,
            Par::Seq,
        );
        let s: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| gram[i * n + j].powi(2))
            .sum();
        s / (nf * (nf - 1.0))
    } else {
        0.0
    };
    OrderParams {
        m,
        m_std: std(&ms, m),
        a: am,
        a_std: std(&at, am),
        w_norm: norm_sum / nf,
        common_sq,
        pair_q2,
        loss: population_loss(cfg, w, a, quad),
    }
}

/// Population gradient flow of the finite network (B = ∞, η → 0) as an ODE on
/// `(w_1..w_N, a_1..a_N)`: `dw_j/dt = −N P_j ∂L/∂w_j`, `da_j/dt = −ε N^{2γ−1} ∂L/∂a_j`, with
/// rows normalised inside the field (the flow is tangent, so |w_j| = 1 is conserved).
pub struct ParticleFlow {
    pub cfg: SimConfig,
    wn: Vec<f64>,
    gw: Vec<f64>,
    ga: Vec<f64>,
}

impl ParticleFlow {
    /// The field and its initial state `[w (N·d), a (N)]` from the symmetric init of `seed`.
    pub fn new(cfg: SimConfig, seed: u64) -> Result<(Self, Vec<f64>)> {
        cfg.validate()?;
        let (w, a) = symmetric_init(&cfg, &mut stream(seed, "init"));
        let (n, d) = (cfg.width, cfg.dim);
        let mut y0 = w;
        y0.extend(a);
        Ok((
            ParticleFlow {
                wn: vec![0.0; n * d],
                gw: vec![0.0; n * d],
                ga: vec![0.0; n],
                cfg,
            },
            y0,
        ))
    }
}

impl VectorField for ParticleFlow {
    fn dim(&self) -> usize {
        self.cfg.width * (self.cfg.dim + 1)
    }
    fn eval(&mut self, _t: f64, y: &[f64], dy: &mut [f64]) -> Result<()> {
        let (n, d) = (self.cfg.width, self.cfg.dim);
        let nf = n as f64;
        for (src, dst) in y[..n * d].chunks_exact(d).zip(self.wn.chunks_exact_mut(d)) {
            let nrm = src.iter().map(|v| v * v).sum::<f64>().sqrt();
            dst.iter_mut().zip(src).for_each(|(o, v)| *o = v / nrm);
        }
        let a = &y[n * d..];
        population_gradient(&self.cfg, &self.wn, a, &mut self.gw, &mut self.ga, Par::Seq);
        project_tangent(&self.wn, &mut self.gw, d);
        for (o, g) in dy[..n * d].iter_mut().zip(&self.gw) {
            *o = -nf * g;
        }
        let ra = self.cfg.eps * nf.powf(2.0 * self.cfg.gamma - 1.0);
        for (o, g) in dy[n * d..].iter_mut().zip(&self.ga) {
            *o = -ra * g;
        }
        Ok(())
    }
}
