//! The closed-form gradient flow of `f(x) = γ (u·w) x` (width d, scalar input) under the
//! MSE loss `L = (1/2n) Σ (f(x_i) − y_i)²` with layer-wise rates η_u, η_w:
//!
//! ```text
//! du/dt = −η_u γ s r w,   dw/dt = −η_w γ s r u,   r = β − k,   β = γ u·w,
//! s = E[x²],  k = E[xy]/E[x²].
//! ```
//!
//! Derivation (Xu & Ziyin 2024, arXiv 2401.07085 v3, re-derived in
//! `docs/exact-linear-1d.md`): with ũ = u/√η_u, w̃ = w/√η_w, c = |γ| s √(η_u η_w),
//! p = ũ + w̃ and q = ũ − w̃ obey ṗ = −c r p, q̇ = +c r q, so p = e^{−τ} p₀, q = e^{τ} q₀
//! and u(t), w(t) are a hyperbolic rotation of (u₀, w₀) by the angle τ(t). With
//! A = |p₀|², B = |q₀|², λ = |γ|√(η_uη_w)/4, X = 2λA, Y = 2λB, the variable z = e^{2τ}
//! solves the Riccati equation `ż = 2c(λA − k z − λB z²)`, z(0) = 1, whose solution we
//! write in a form where every sum has non-negative terms (no cancellation anywhere):
//!
//! ```text
//! D = √(k² + XY),  P = D − k,  Q = D + k  (the one that would cancel is computed as XY/(other)),
//! p̂ = P/D, q̂ = Q/D (both 1 when D = 0),   E = e^{−2cDt},   φ = (1 − E)/D  (→ 2ct as D → 0),
//! z(t) = (p̂ + q̂ E + X φ) / (q̂ + p̂ E + Y φ),        z − 1 = 2 φ (β₀ − k) / (q̂ + p̂ E + Y φ),
//! r(t) = β − k = (β₀ − k) · E · ((b + z)/(b + 1))² / z,   b = −z₋ = Q/Y = X/P,
//! β(t) = (X/z − Y z)/2 = k + r(t)   (whichever has the smaller rounding bound).
//! ```
//!
//! Two conserved quantities make every other observable an algebraic function of β(t):
//! the imbalance `C = η_w|u|² − η_u|w|²` and the wedge `|u ∧ w|` (a hyperbolic rotation
//! has unit determinant, so the area spanned by (ũ, w̃) is constant). With
//! ω = |γ| |u₀ ∧ w₀|:
//!
//! ```text
//! cos∠(u, w)(t) = sign(γ) β / √(β² + ω²)                  (γ|u||w| sin∠ = ω is conserved)
//! K(t) = γ²(η_u|w|² + η_w|u|²) = √(γ⁴C² + 4γ²η_uη_w (β² + ω²))
//! K(∞)/K(0) = √(1 + (β∞² − β₀²)/K̄²),   K̄ = K(0)/(2|γ|√(η_uη_w)) = λ(A + B).
//! ```
//!
//! The NTK here is the kernel that drives the function: `dβ/dt = −s K r`, i.e. the
//! empirical NTK with the layer-wise rates as preconditioner, `Σ_p η_p ∂f(x)/∂θ_p ∂f(x')/∂θ_p
//! = K x x'`.

use crate::{Error, Result};

/// The only data statistics the dynamics depend on (any 1-D dataset reduces to these).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Moments1d {
    /// s = E[x²] > 0 (sample mean over the training set).
    pub s: f64,
    /// k = E[xy]/E[x²]: the least-squares slope, the end-to-end coefficient gradient flow
    /// converges to.
    pub k: f64,
    /// L* = ½ E[(y − k x)²]: the loss at β = k; `L(β) = (s/2)(β − k)² + L*`.
    pub loss_floor: f64,
}

impl Moments1d {
    /// Moments of the samples `(x_i, y_i)`; errors if there are none or E[x²] = 0.
    pub fn from_samples(x: &[f64], y: &[f64]) -> Result<Self> {
        if x.is_empty() || x.len() != y.len() {
            return Err(Error::Shape(format!(
                "1-D data needs as many targets as inputs and at least one sample (got {} inputs, {} targets)",
                x.len(),
                y.len()
            )));
        }
        let n = x.len() as f64;
        let s = x.iter().map(|v| v * v).sum::<f64>() / n;
        let sxy = x.iter().zip(y).map(|(a, b)| a * b).sum::<f64>() / n;
        if !(s > 0.0 && s.is_finite() && sxy.is_finite()) {
            return Err(Error::config(
                "data",
                format!("the exact 1-D solution needs 0 < E[x²] < ∞ (got E[x²] = {s}, E[xy] = {sxy}); every input is zero or the data are not finite"),
            ));
        }
        let k = sxy / s;
        let floor = 0.5
            * x.iter()
                .zip(y)
                .map(|(a, b)| (b - k * a).powi(2))
                .sum::<f64>()
            / n;
        Ok(Moments1d {
            s,
            k,
            loss_floor: floor,
        })
    }

    /// Moments of a dataset with one input column and one target column.
    pub fn from_dataset(data: &crate::data::Dataset) -> Result<Self> {
        if data.d() != 1 || data.c() != 1 {
            return Err(Error::config(
                "data",
                format!(
                    "the exact solution is for scalar inputs and outputs; the data have d = {} inputs and c = {} outputs",
                    data.d(),
                    data.c()
                ),
            ));
        }
        Self::from_samples(data.x.col_as_slice(0), data.y.col_as_slice(0))
    }
}

/// Output scale γ and layer-wise learning rates (η_u readout, η_w first layer).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hyper1d {
    /// Output multiplier γ (any finite real; γ < 0 is handled by flipping u).
    pub gamma: f64,
    /// Learning rate of the readout u.
    pub lr_u: f64,
    /// Learning rate of the first layer w.
    pub lr_w: f64,
}

impl Hyper1d {
    fn validate(&self) -> Result<()> {
        if !self.gamma.is_finite() {
            return Err(Error::config(
                "model.gamma",
                format!("must be finite, got {}", self.gamma),
            ));
        }
        for (k, v) in [("model.lr_u", self.lr_u), ("model.lr_w", self.lr_w)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::config(
                    k,
                    format!("must be a finite number > 0, got {v}"),
                ));
            }
        }
        Ok(())
    }
}

/// Every observable of the flow at one time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct State1d {
    /// Gradient-flow time.
    pub t: f64,
    /// End-to-end coefficient β = γ u·w.
    pub beta: f64,
    /// Residual r = β − k (computed without cancellation).
    pub residual: f64,
    /// Training loss (s/2) r² + L*.
    pub loss: f64,
    /// NTK K = γ²(η_u|w|² + η_w|u|²) (kernel per unit x x').
    pub ntk: f64,
    /// cos∠(u, w); 0 when u or w is the zero vector.
    pub cos_angle: f64,
    /// |u|.
    pub norm_u: f64,
    /// |w|.
    pub norm_w: f64,
    /// ln z = 2τ: the log stretch of p and q (p = e^{−τ}p₀, q = e^{τ}q₀).
    pub log_z: f64,
}

/// The kernel/feature-learning order parameters of one initialisation (t → ∞ limits).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OrderParameters {
    /// K̄ = K(0)/(2|γ|√(η_uη_w)): the kernel scale in units of β.
    pub kbar: f64,
    /// β₀ = γ u₀·w₀.
    pub beta0: f64,
    /// β∞ (= k unless k has the sign that the init cannot reach: A = 0 or B = 0).
    pub beta_inf: f64,
    /// ρ₀ = β₀/K̄ ∈ [−1, 1].
    pub rho0: f64,
    /// Δ = K(∞)/K(0) − 1 = √(1 + (β∞² − β₀²)/K̄²) − 1 (exact).
    pub ntk_rel_change: f64,
    /// ln z₊ = 2τ(∞).
    pub log_z_plus: f64,
    /// cos∠(u, w) at t = 0 and t → ∞.
    pub cos0: f64,
    pub cos_inf: f64,
    /// ln(|u∞|/|u₀|) and ln(|w∞|/|w₀|).
    pub log_norm_ratio_u: f64,
    pub log_norm_ratio_w: f64,
}

/// The exact solution for one (hyperparameters, data, initialisation).
#[derive(Debug, Clone)]
pub struct ExactLinear1d {
    pub hyper: Hyper1d,
    pub moments: Moments1d,
    /// sign(γ) (1 for γ = 0); internally u is replaced by sign(γ)·u and γ by |γ|.
    sg: f64,
    g: f64,
    /// √(η_u η_w).
    e: f64,
    /// A = |p₀|², B = |q₀|², G = p₀·q₀ = |ũ₀|² − |w̃₀|², W = |ũ₀ ∧ w̃₀|.
    a: f64,
    b: f64,
    gpq: f64,
    wedge_t: f64,
    beta0: f64,
    norm_u0: f64,
    norm_w0: f64,
    cos0: f64,
    // Riccati constants
    x: f64,
    y: f64,
    d: f64,
    p: f64,
    q: f64,
    p_hat: f64,
    q_hat: f64,
    /// 2c = 2|γ| s √(η_uη_w).
    two_c: f64,
    /// The initial vectors (when built from vectors).
    vectors: Option<(Vec<f64>, Vec<f64>)>,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// |a ∧ b| = |a| · |b − proj_a b|, by Gram–Schmidt with one re-orthogonalisation pass
/// (accurate even for nearly parallel vectors, unlike √(|a|²|b|² − (a·b)²)).
pub fn wedge_norm(a: &[f64], b: &[f64]) -> f64 {
    let na2 = dot(a, a);
    if na2 == 0.0 {
        return 0.0;
    }
    let mut perp = b.to_vec();
    for _ in 0..2 {
        let c = dot(a, &perp) / na2;
        for (p, ai) in perp.iter_mut().zip(a) {
            *p -= c * ai;
        }
    }
    na2.sqrt() * dot(&perp, &perp).sqrt()
}

/// (1 − e^{−x})/x, stable for x → 0 (limit 1) and x = ∞ (0).
fn one_minus_exp_over(x: f64) -> f64 {
    if x.abs() < 1e-10 {
        1.0 - 0.5 * x
    } else if x.is_infinite() {
        0.0
    } else {
        -(-x).exp_m1() / x
    }
}

/// a·b with 0·∞ = 0 (a zero coefficient kills a term whatever the other factor).
fn mul0(a: f64, b: f64) -> f64 {
    if a == 0.0 {
        0.0
    } else {
        a * b
    }
}

impl ExactLinear1d {
    /// The solution from initial vectors u₀ (readout) and w₀ (first layer), same length d ≥ 1.
    pub fn from_vectors(
        hyper: Hyper1d,
        moments: Moments1d,
        u0: &[f64],
        w0: &[f64],
    ) -> Result<Self> {
        hyper.validate()?;
        if u0.is_empty() || u0.len() != w0.len() {
            return Err(Error::config(
                "model.init",
                format!(
                    "u and w must have the same length d ≥ 1 (got {} and {})",
                    u0.len(),
                    w0.len()
                ),
            ));
        }
        if u0.iter().chain(w0).any(|v| !v.is_finite()) {
            return Err(Error::config(
                "model.init",
                "initial weights must be finite",
            ));
        }
        let sg = if hyper.gamma < 0.0 { -1.0 } else { 1.0 };
        let (su, sw) = (hyper.lr_u.sqrt(), hyper.lr_w.sqrt());
        let ut: Vec<f64> = u0.iter().map(|v| sg * v / su).collect();
        let wt: Vec<f64> = w0.iter().map(|v| v / sw).collect();
        let a = ut.iter().zip(&wt).map(|(x, y)| (x + y) * (x + y)).sum();
        let b = ut.iter().zip(&wt).map(|(x, y)| (x - y) * (x - y)).sum();
        let gpq = ut.iter().zip(&wt).map(|(x, y)| (x + y) * (x - y)).sum();
        let wedge_t = wedge_norm(&ut, &wt);
        let beta0 = hyper.gamma * dot(u0, w0);
        let (nu, nw) = (dot(u0, u0).sqrt(), dot(w0, w0).sqrt());
        let mut sol = Self::assemble(
            hyper,
            moments,
            sg,
            a,
            b,
            gpq,
            wedge_t,
            beta0,
            nu,
            nw,
            dot(u0, w0),
        );
        sol.vectors = Some((u0.to_vec(), w0.to_vec()));
        Ok(sol)
    }

    /// The solution from the sufficient statistics |u₀|², |w₀|², u₀·w₀ only (what the phase
    /// diagram samples); vectors are then unavailable.
    pub fn from_stats(
        hyper: Hyper1d,
        moments: Moments1d,
        norm_u2: f64,
        norm_w2: f64,
        uw: f64,
    ) -> Result<Self> {
        hyper.validate()?;
        if !(norm_u2 >= 0.0
            && norm_w2 >= 0.0
            && norm_u2.is_finite()
            && norm_w2.is_finite()
            && uw.is_finite())
        {
            return Err(Error::config(
                "model.init",
                "|u₀|², |w₀|² must be finite and ≥ 0 and u₀·w₀ finite",
            ));
        }
        let sg = if hyper.gamma < 0.0 { -1.0 } else { 1.0 };
        let (nu2t, nw2t) = (norm_u2 / hyper.lr_u, norm_w2 / hyper.lr_w);
        let dt = sg * uw / hyper.lr_u.sqrt() / hyper.lr_w.sqrt();
        let prod = (nu2t * nw2t).sqrt();
        let wedge2 = ((prod - dt.abs()) * (prod + dt.abs())).max(0.0);
        let gpq = nu2t - nw2t;
        let big = nu2t + nw2t + 2.0 * dt.abs();
        let small = if big > 0.0 {
            (gpq * gpq + 4.0 * wedge2) / big
        } else {
            0.0
        };
        let (a, b) = if dt >= 0.0 {
            (big, small)
        } else {
            (small, big)
        };
        let beta0 = hyper.gamma * uw;
        Ok(Self::assemble(
            hyper,
            moments,
            sg,
            a,
            b,
            gpq,
            wedge2.sqrt(),
            beta0,
            norm_u2.sqrt(),
            norm_w2.sqrt(),
            uw,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        hyper: Hyper1d,
        moments: Moments1d,
        sg: f64,
        a: f64,
        b: f64,
        gpq: f64,
        wedge_t: f64,
        beta0: f64,
        norm_u0: f64,
        norm_w0: f64,
        uw: f64,
    ) -> Self {
        let g = hyper.gamma.abs();
        let e = hyper.lr_u.sqrt() * hyper.lr_w.sqrt();
        let lambda = g * e / 4.0;
        let (x, y) = (2.0 * lambda * a, 2.0 * lambda * b);
        let k = moments.k;
        let d = k.hypot(2.0 * lambda * a.sqrt() * b.sqrt());
        let (p, q) = if k >= 0.0 {
            let q = d + k;
            (if q > 0.0 { x * (y / q) } else { 0.0 }, q)
        } else {
            let p = d - k;
            (p, x * (y / p))
        };
        let (p_hat, q_hat) = if d > 0.0 { (p / d, q / d) } else { (1.0, 1.0) };
        let cos0 = if norm_u0 > 0.0 && norm_w0 > 0.0 {
            uw / (norm_u0 * norm_w0)
        } else {
            0.0
        };
        ExactLinear1d {
            hyper,
            moments,
            sg,
            g,
            e,
            a,
            b,
            gpq,
            wedge_t,
            beta0,
            norm_u0,
            norm_w0,
            cos0,
            x,
            y,
            d,
            p,
            q,
            p_hat,
            q_hat,
            two_c: 2.0 * g * moments.s * e,
            vectors: None,
        }
    }

    /// β₀ = γ u₀·w₀.
    pub fn beta0(&self) -> f64 {
        self.beta0
    }
    /// ω = |γ| |u₀ ∧ w₀| (conserved): γ|u||w| sin∠(u, w).
    pub fn omega(&self) -> f64 {
        self.g * self.e * self.wedge_t
    }
    /// C = η_w|u|² − η_u|w|² (conserved).
    pub fn imbalance(&self) -> f64 {
        self.e * self.e * self.gpq
    }
    /// K̄ = λ(A + B) = K(0)/(2|γ|√(η_uη_w)), the kernel scale in units of β.
    pub fn kbar(&self) -> f64 {
        self.g * self.e * (self.a + self.b) / 4.0
    }
    /// Asymptotic convergence rate 2cD of z → z₊ (0 when D = 0: algebraic convergence).
    pub fn rate(&self) -> f64 {
        self.two_c * self.d
    }
    /// A time by which the flow has essentially converged: `horizon / rate` (or, when the
    /// rate vanishes, `horizon` times the initial time scale 1/(s K(0)) — algebraic decay).
    pub fn time_scale(&self) -> f64 {
        let r = self.rate();
        if r > 0.0 {
            1.0 / r
        } else {
            let k0 = self.ntk_of_beta(self.beta0) * self.moments.s;
            if k0 > 0.0 {
                1.0 / k0
            } else {
                1.0
            }
        }
    }
    /// The initial vectors (u₀, w₀) when built from vectors.
    pub fn initial_vectors(&self) -> Option<(&[f64], &[f64])> {
        self.vectors
            .as_ref()
            .map(|(u, w)| (u.as_slice(), w.as_slice()))
    }

    /// K as a function of β: √(γ⁴C² + 4γ²η_uη_w(β² + ω²)) = hypot(γ²η_uη_w√(AB), 2|γ|√(η_uη_w)β).
    pub fn ntk_of_beta(&self, beta: f64) -> f64 {
        let ge = self.g * self.e;
        (ge * ge * self.a.sqrt() * self.b.sqrt()).hypot(2.0 * ge * beta)
    }

    /// β(∞): k, unless the init cannot reach k's sign (A = 0 ⇒ β ≤ 0; B = 0 ⇒ β ≥ 0).
    pub fn beta_inf(&self) -> f64 {
        let k = self.moments.k;
        if self.g == 0.0 {
            self.beta0
        } else if self.x == 0.0 && self.y == 0.0 {
            0.0
        } else if self.x == 0.0 {
            k.min(0.0)
        } else if self.y == 0.0 {
            k.max(0.0)
        } else {
            k
        }
    }

    /// The state at time t ≥ 0 (t = ∞ allowed: the limit).
    pub fn at(&self, t: f64) -> State1d {
        let k = self.moments.k;
        if self.g == 0.0 || t == 0.0 {
            return self.observables(t, self.beta0, self.beta0 - k, 0.0);
        }
        if t.is_infinite() {
            return self.limit_at(t);
        }
        let x = self.two_c * self.d * t;
        let ee = (-x).exp();
        if ee == 0.0 {
            return self.limit_at(t);
        }
        let phi = self.two_c * t * one_minus_exp_over(x);
        let num = self.p_hat + self.q_hat * ee + mul0(self.x, phi);
        let den = self.q_hat + self.p_hat * ee + mul0(self.y, phi);
        let z = num / den;
        let zm1 = 2.0 * phi * (self.beta0 - k) / den;
        let log_z = if zm1.abs() <= 0.5 {
            zm1.ln_1p()
        } else {
            num.ln() - den.ln()
        };
        // residual r = (β₀ − k) E ((b + z)/(b + 1))² / z
        let bb = if self.y > 0.0 {
            self.q / self.y
        } else if self.p > 0.0 {
            self.x / self.p
        } else {
            f64::INFINITY
        };
        let (e_ratio, ratio_over_z) = if bb.is_infinite() {
            (ee, 1.0 / z)
        } else {
            (ee * (bb + z) / (bb + 1.0), (bb / z + 1.0) / (bb + 1.0))
        };
        let r = (self.beta0 - k) * e_ratio * ratio_over_z;
        let (tx, ty) = (mul0(self.x, 1.0 / z), mul0(self.y, z));
        let direct_bound = tx + ty;
        let via_r_bound = 4.0 * (k.abs() + r.abs());
        let beta = if direct_bound <= via_r_bound {
            0.5 * (tx - ty)
        } else {
            k + r
        };
        self.observables(t, beta, r, log_z)
    }

    fn limit_at(&self, t: f64) -> State1d {
        let bi = self.beta_inf();
        let log_z = if self.g == 0.0 {
            0.0
        } else {
            // z₊ = (P + X)/(Q + Y), z₊ − 1 = 2(β₀ − k)/(Q + Y)
            let zm1 = 2.0 * (self.beta0 - self.moments.k) / (self.q + self.y);
            if zm1.abs() <= 0.5 {
                zm1.ln_1p()
            } else {
                (self.p + self.x).ln() - (self.q + self.y).ln()
            }
        };
        self.observables(t, bi, bi - self.moments.k, log_z)
    }

    /// All observables from β (and r, ln z), via the conserved C and ω.
    fn observables(&self, t: f64, beta: f64, r: f64, log_z: f64) -> State1d {
        let m = &self.moments;
        let loss = 0.5 * m.s * r * r + m.loss_floor;
        if self.g == 0.0 {
            return State1d {
                t,
                beta,
                residual: r,
                loss,
                ntk: 0.0,
                cos_angle: self.cos0,
                norm_u: self.norm_u0,
                norm_w: self.norm_w0,
                log_z: 0.0,
            };
        }
        let ge = self.g * self.e;
        let ntk = self.ntk_of_beta(beta);
        // |ũ|² + |w̃|² = S, |ũ|² − |w̃|² = G, |ũ|²|w̃|² = (β² + ω²)/(γ²η_uη_w)
        let pdot = beta / ge;
        let ssum = (self.a.sqrt() * self.b.sqrt()).hypot(2.0 * pdot);
        let big = 0.5 * (ssum + self.gpq.abs());
        let prod = pdot * pdot + self.wedge_t * self.wedge_t;
        let small = if big > 0.0 { prod / big } else { 0.0 };
        let (nut2, nwt2) = if self.gpq >= 0.0 {
            (big, small)
        } else {
            (small, big)
        };
        let omega = self.omega();
        let h = beta.hypot(omega);
        let cos_angle = if h > 0.0 { self.sg * beta / h } else { 0.0 };
        State1d {
            t,
            beta,
            residual: r,
            loss,
            ntk,
            cos_angle,
            norm_u: self.hyper.lr_u.sqrt() * nut2.sqrt(),
            norm_w: self.hyper.lr_w.sqrt() * nwt2.sqrt(),
            log_z,
        }
    }

    /// The vectors (u(t), w(t)) (needs a solution built by [`Self::from_vectors`]):
    /// `ũ = cosh τ ũ₀ − sinh τ w̃₀`, `w̃ = −sinh τ ũ₀ + cosh τ w̃₀` for |τ| ≤ 1, and the
    /// equivalent `ũ = (e^{−τ} p₀ + e^{τ} q₀)/2`, `w̃ = (e^{−τ} p₀ − e^{τ} q₀)/2` beyond.
    pub fn vectors_at(&self, t: f64) -> Option<(Vec<f64>, Vec<f64>)> {
        let (u0, w0) = self.vectors.as_ref()?;
        let tau = 0.5 * self.at(t).log_z;
        let (su, sw) = (self.hyper.lr_u.sqrt(), self.hyper.lr_w.sqrt());
        let mut u = Vec::with_capacity(u0.len());
        let mut w = Vec::with_capacity(u0.len());
        for (&ui, &wi) in u0.iter().zip(w0) {
            let (ut, wt) = (self.sg * ui / su, wi / sw);
            let (un, wn) = if tau.abs() <= 1.0 {
                let (ch, sh) = (tau.cosh(), tau.sinh());
                (ch * ut - sh * wt, ch * wt - sh * ut)
            } else {
                let (em, ep) = ((-tau).exp(), tau.exp());
                let (pi, qi) = (ut + wt, ut - wt);
                (
                    0.5 * (mul0(pi, em) + mul0(qi, ep)),
                    0.5 * (mul0(pi, em) - mul0(qi, ep)),
                )
            };
            u.push(self.sg * su * un);
            w.push(sw * wn);
        }
        Some((u, w))
    }

    /// The t → ∞ order parameters (exact, no integration).
    pub fn order_parameters(&self) -> OrderParameters {
        let kbar = self.kbar();
        let bi = self.beta_inf();
        let s0 = self.at(0.0);
        let sinf = self.limit_at(f64::INFINITY);
        let qq = if kbar > 0.0 {
            (bi - self.beta0) * (bi + self.beta0) / (kbar * kbar)
        } else {
            0.0
        };
        let delta = qq / (1.0 + (1.0 + qq).max(0.0).sqrt());
        let lr = |a: f64, b: f64| {
            if a > 0.0 && b > 0.0 {
                (b / a).ln()
            } else {
                0.0
            }
        };
        OrderParameters {
            kbar,
            beta0: self.beta0,
            beta_inf: bi,
            rho0: if kbar > 0.0 { self.beta0 / kbar } else { 0.0 },
            ntk_rel_change: delta,
            log_z_plus: sinf.log_z,
            cos0: s0.cos_angle,
            cos_inf: sinf.cos_angle,
            log_norm_ratio_u: lr(s0.norm_u, sinf.norm_u),
            log_norm_ratio_w: lr(s0.norm_w, sinf.norm_w),
        }
    }
}
