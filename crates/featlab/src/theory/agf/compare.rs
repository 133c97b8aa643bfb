//! AGF vs gradient flow: factor conventions and staircase series. Drop matching and its
//! errors are [`crate::compare::drops`].

use serde::{Deserialize, Serialize};

/// The factor conventions between the paper/notebooks and featlab, in one place.
///
/// featlab: loss L = (1/2n) Σ_n ‖f(x_n) − y_n‖² (½, mean over samples, sum over outputs);
/// time t = gradient-flow time (GD: t = lr × steps); AGF runs on the same clock (η = 1).
/// * torch `MSELoss` (mean over samples *and* the c outputs, no ½) = (2/c)·L: its
///   gradients are (2/c)× ours, so its step count maps to t = (2/c)·lr·steps, and its loss
///   values are (2/c)× ours ([`Conventions::torch_mse_factor`]).
/// * heavy-ball momentum β: effective rate lr/(1 − β) ([`Conventions::momentum_time`]).
/// * initial neuron norms: diagonal nets start at (u, v) = (√2α, 0), so ρ0 = √2α; the
///   linear/ReLU nets draw W ~ N(0, α²/d), A ~ N(0, α²/c), so ρ0 ≈ √2α too; thresholds use
///   the actual ρ0 of each neuron, never α.
/// * rescaled time t̃ = t / log(1/ρ0) (κ = 2) is what converges as α → 0.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Conventions;

impl Conventions {
    /// torch MSELoss / featlab loss = 2/c.
    pub fn torch_mse_factor(c: usize) -> f64 {
        2.0 / c as f64
    }
    /// Gradient-flow time of `steps` heavy-ball steps at learning rate `lr`, momentum `beta`
    /// (slow-time limit): t = steps · lr/(1 − β).
    pub fn momentum_time(steps: f64, lr: f64, beta: f64) -> f64 {
        steps * lr / (1.0 - beta)
    }
    /// Initial norm of a diagonal-net neuron started at (√2α, 0).
    pub fn diagonal_init_norm(alpha: f64) -> f64 {
        2f64.sqrt() * alpha
    }
    /// Rescaled time t̃ = t / log(1/ρ0).
    pub fn rescaled_time(t: f64, rho0: f64) -> f64 {
        t / (-rho0.ln())
    }
}

/// The AGF staircase evaluated on a time grid: ℓ_k on [t_k, t_{k+1}).
pub fn staircase_at(t: &[f64], t_agf: &[f64], levels: &[f64]) -> Vec<f64> {
    t.iter()
        .map(|&s| levels[t_agf.iter().filter(|&&a| a <= s).count()])
        .collect()
}

/// x and y of a step series for [`crate::figure::Series::step`]: (0, ℓ0), (t1, ℓ1), …,
/// (t_end, ℓ_K).
pub fn staircase_series(t_agf: &[f64], levels: &[f64], t_end: f64) -> (Vec<f64>, Vec<f64>) {
    let mut x = vec![0.0];
    x.extend_from_slice(t_agf);
    x.push(t_end.max(*t_agf.last().unwrap_or(&0.0)));
    let mut y = levels[..=t_agf.len()].to_vec();
    y.push(*y.last().unwrap_or(&0.0));
    (x, y)
}
