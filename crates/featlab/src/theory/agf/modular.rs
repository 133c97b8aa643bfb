//! Closed-form AGF predictions for a quadratic two-layer net on (template) modular addition
//! (Kunin et al. 2025, §3.4; checked numbers in the AGF digest §7.3).
//!
//! Network f(a·x, b·x) = Σ_i w_i (u_iᵀ a·x + v_iᵀ b·x)² (the `TwoLayer` model with quadratic
//! activation, d = 2p, c = p, no bias), loss L = ½ mean_{a,b} ‖f − ((a+b)·x)‖², gradient
//! flow time t. Template spectrum x̂ (unnormalised DFT), frequency pairs k = 1..⌊p/2⌋ with
//! energies E_k = (1/2p) Σ_{ξ=±k} |x̂[ξ]|² (= |x̂_k|²/p for k < p/2), Σ_k E_k = ½‖x‖².
//!
//! * Utility maximisers are single-frequency neurons; frequencies are learned in decreasing
//!   |x̂_k| order ([`ModularTheory::order`]).
//! * Frequency-complete plateau levels `ℓ^(j) = Σ_{not yet learned k} E_k` (½-mean form;
//!   the torch-MSE form of the paper is this × 2/p). Each frequency is in fact a cascade of
//!   several neuron activations (the first removes 1/9 of E_k, digest §7.3) whose
//!   sub-plateaus these levels do not describe.
//! * Maximal normalised utility of frequency k (residual = targets):
//!   `Ū*_k = √(2/27) |x̂_k|³ / p^{3/2}`.
//! * Jump time from a neuron of norm ρ at the utility maximiser:
//!   `τ_k = (1/ρ − 1) / (3 Ū*_k)` (norm reaches 1); from a Gaussian init (ρ ≈ √2 α) it is a
//!   lower bound, the first GF drop comes ~2–2.6× later (digest §7.3).
#![allow(clippy::needless_range_loop, clippy::useless_vec)] // index-heavy numeric kernels (shapes in comments)

use crate::data::modular::{magnitudes, pair_energies};

/// Closed forms for one template.
#[derive(Debug, Clone, PartialEq)]
pub struct ModularTheory {
    /// Modulus p.
    pub p: usize,
    /// |x̂_k| for k = 0..=⌊p/2⌋.
    pub magnitudes: Vec<f64>,
    /// E_k for k = 0..=⌊p/2⌋.
    pub energies: Vec<f64>,
}

impl ModularTheory {
    /// Theory for template `x` (length p).
    pub fn new(template: &[f64]) -> Self {
        ModularTheory {
            p: template.len(),
            magnitudes: magnitudes(template),
            energies: pair_energies(template),
        }
    }

    /// Frequencies k ≥ 1 with non-negligible energy (E_k > 1e-12·ΣE), in predicted learning
    /// order: decreasing |x̂_k|, ties by increasing k.
    pub fn order(&self) -> Vec<usize> {
        let total: f64 = self.energies.iter().sum();
        let mut ks: Vec<usize> = (1..self.energies.len())
            .filter(|&k| self.energies[k] > 1e-12 * total)
            .collect();
        ks.sort_by(|&a, &b| {
            self.magnitudes[b]
                .total_cmp(&self.magnitudes[a])
                .then(a.cmp(&b))
        });
        ks
    }

    /// Whether two frequencies in [`order`](Self::order) have |x̂| within `rel` of each other
    /// (then their order is not predicted).
    pub fn has_ties(&self, rel: f64) -> bool {
        let o = self.order();
        o.windows(2).any(|w| {
            (self.magnitudes[w[0]] - self.magnitudes[w[1]]).abs() <= rel * self.magnitudes[w[0]]
        })
    }

    /// Frequency-complete levels ℓ^(0..=K) along [`order`](Self::order) (ℓ^(0) = ½‖x‖²
    /// minus the DC part, which mean-centred templates do not have).
    pub fn levels(&self) -> Vec<f64> {
        let o = self.order();
        let mut l: f64 = o.iter().map(|&k| self.energies[k]).sum();
        let mut out = vec![l];
        for &k in &o {
            l -= self.energies[k];
            out.push(l.max(0.0));
        }
        out
    }

    /// Ū*_k = √(2/27)|x̂_k|³/p^{3/2}.
    pub fn max_utility(&self, k: usize) -> f64 {
        (2.0f64 / 27.0).sqrt() * self.magnitudes[k].powi(3) / (self.p as f64).powf(1.5)
    }

    /// τ_k = (1/ρ − 1)/(3Ū*_k) for a neuron of norm ρ started at the maximiser.
    pub fn jump_time(&self, k: usize, rho: f64) -> f64 {
        (1.0 / rho - 1.0) / (3.0 * self.max_utility(k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::modular::{modular_addition, Template};
    use crate::model::two_layer::TwoLayer;
    use crate::model::{Activation, Model};
    use crate::rng::{normal_vec, stream};

    #[test]
    fn order_and_levels_of_the_paper_template() {
        let t = Template::Fourier {
            frequencies: vec![5, 1, 3],
            magnitudes: vec![2.5, 10.0, 5.0],
        };
        let x = t.build(20, &mut stream(0, "t")).unwrap();
        let th = ModularTheory::new(&x);
        assert_eq!(th.order(), vec![1, 3, 5]);
        let lv = th.levels();
        let want = [131.25 / 20.0, 31.25 / 20.0, 6.25 / 20.0, 0.0];
        for (a, b) in lv.iter().zip(want) {
            assert!((a - b).abs() < 1e-10, "{lv:?}");
        }
        assert!(!th.has_ties(1e-9));
        assert!(
            ModularTheory::new(&Template::OneHot.build(7, &mut stream(0, "t")).unwrap())
                .has_ties(1e-9)
        );
    }

    /// Ū*_k checked by integrating the utility-ascent ODE on the unit sphere for one neuron:
    /// dθ/ds = ∇U − 3U θ (tangent part; ⟨θ, ∇U⟩ = 3U), from several random starts; the best
    /// limit must equal √(2/27)|x̂_max|³/p^{3/2}.
    #[test]
    fn max_utility_matches_sphere_ascent() {
        let p = 7;
        let t = Template::Fourier {
            frequencies: vec![1, 2],
            magnitudes: vec![4.0, 2.0],
        };
        let x = t.build(p, &mut stream(0, "t")).unwrap();
        let data = modular_addition(&x).unwrap();
        let th = ModularTheory::new(&x);
        let model = TwoLayer::new(2 * p, 1, p, Activation::Quadratic, false);
        let n = data.n() as f64;
        let mut ws = model.workspace(data.n());
        let mut best = f64::NEG_INFINITY;
        for seed in 0..4 {
            let mut th_v = normal_vec(&mut stream(seed, "start"), model.num_params(), 1.0);
            let nrm = crate::linalg::norm2(&th_v);
            th_v.iter_mut().for_each(|v| *v /= nrm);
            let mut field =
                crate::train::ode::from_fn(model.num_params(), |_t, y: &[f64], dy: &mut [f64]| {
                    let nrm = crate::linalg::norm2(y);
                    let yb: Vec<f64> = y.iter().map(|v| v / nrm).collect();
                    model.forward(&yb, data.x.as_ref(), &mut ws);
                    for j in 0..p {
                        for i in 0..data.n() {
                            ws.d_out[(i, j)] = data.y[(i, j)] / n;
                        }
                    }
                    model.backward(&yb, data.x.as_ref(), dy, &mut ws);
                    let u = crate::linalg::dot(&yb, dy) / 3.0;
                    for (d, v) in dy.iter_mut().zip(&yb) {
                        *d -= 3.0 * u * v;
                    }
                    Ok(())
                });
            let sol = crate::train::ode::solve(
                &mut field,
                &crate::train::ode::DOPRI5,
                crate::train::ode::PidController::new(1e-9, 1e-12),
                0.0,
                200.0,
                &th_v,
                &[200.0],
                1_000_000,
            )
            .unwrap();
            let y = &sol.ys[0];
            let nrm = crate::linalg::norm2(y);
            let yb: Vec<f64> = y.iter().map(|v| v / nrm).collect();
            let f = model.predict(&yb, data.x.as_ref());
            let u: f64 = (0..data.n())
                .flat_map(|i| (0..p).map(move |j| (i, j)))
                .map(|(i, j)| f[(i, j)] * data.y[(i, j)])
                .sum::<f64>()
                / n;
            best = best.max(u);
        }
        let want = th.max_utility(1);
        assert!(
            (best - want).abs() < 1e-6 * want,
            "sphere ascent {best} vs closed form {want}"
        );
    }
}
