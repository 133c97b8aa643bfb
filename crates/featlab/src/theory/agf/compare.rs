//! AGF vs gradient flow: factor conventions, drop matching and relative errors.

use crate::analysis::midpoint_crossings;
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

/// One matched drop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drop {
    pub t_agf: f64,
    /// Midpoint crossing of the GF loss between the AGF levels ℓ_{k−1}, ℓ_k (None: never).
    pub t_gf: Option<f64>,
    pub loss_agf: f64,
    /// GF loss on the plateau after the drop: the loss at the midpoint between this
    /// drop's crossing and the next one (or the end of the run).
    pub loss_gf: Option<f64>,
    pub feature: usize,
}

/// Match AGF rounds to the GF loss curve: t_gf = first crossing of (ℓ_{k−1}+ℓ_k)/2
/// (`analysis::midpoint_crossings`), loss_gf = GF loss sampled halfway (in time) between
/// consecutive crossings — the middle of the GF plateau that AGF's level ℓ_k describes.
pub fn match_drops(
    t: &[f64],
    loss: &[f64],
    t_agf: &[f64],
    levels: &[f64],
    features: &[usize],
) -> Vec<Drop> {
    let cross = midpoint_crossings(t, loss, levels);
    let t_end = *t.last().unwrap_or(&0.0);
    (0..t_agf.len())
        .map(|k| {
            let t_gf = cross[k];
            let loss_gf = t_gf.map(|a| {
                let b = cross.get(k + 1).copied().flatten().unwrap_or(t_end);
                sample(t, loss, 0.5 * (a + b))
            });
            Drop {
                t_agf: t_agf[k],
                t_gf,
                loss_agf: levels[k + 1],
                loss_gf,
                feature: features[k],
            }
        })
        .collect()
}

/// Linear interpolation of a recorded curve.
pub fn sample(t: &[f64], y: &[f64], at: f64) -> f64 {
    match t.iter().position(|&s| s >= at) {
        None => *y.last().unwrap_or(&f64::NAN),
        Some(0) => y[0],
        Some(i) => {
            let w = (at - t[i - 1]) / (t[i] - t[i - 1]);
            y[i - 1] + w * (y[i] - y[i - 1])
        }
    }
}

/// Largest relative errors |t_agf − t_gf|/t_gf and |ℓ_agf − ℓ_gf|/ℓ_gf over matched drops
/// (∞ if a drop is missing in GF). A level fitted to zero (ℓ_agf ≤ `loss_floor`) has no
/// relative error; it is measured as the fraction of the previous level GF has not removed,
/// |ℓ_gf − ℓ_agf|/ℓ_{k−1}.
pub fn max_errors(drops: &[Drop], loss_floor: f64) -> (f64, f64) {
    let mut et: f64 = 0.0;
    let mut el: f64 = 0.0;
    for (k, d) in drops.iter().enumerate() {
        match (d.t_gf, d.loss_gf) {
            (Some(tg), Some(lg)) => {
                et = et.max((d.t_agf - tg).abs() / tg);
                el = el.max(level_error(
                    d.loss_agf,
                    lg,
                    k.checked_sub(1).map(|j| drops[j].loss_agf),
                    loss_floor,
                ));
            }
            _ => {
                et = f64::INFINITY;
                el = f64::INFINITY;
            }
        }
    }
    (et, el)
}

/// Relative level error (see [`max_errors`]); `prev` is ℓ_{k−1} (None: the first level,
/// then the floor is used).
pub fn level_error(l_agf: f64, l_gf: f64, prev: Option<f64>, loss_floor: f64) -> f64 {
    if l_agf > loss_floor {
        (l_agf - l_gf).abs() / l_gf.abs()
    } else {
        (l_gf - l_agf).abs() / prev.unwrap_or(loss_floor).max(loss_floor)
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

/// The settings of a preset written for init scale `alpha_ref`, moved to `alpha` for an
/// α-series run (κ = 3 nets, where the time to the first jump grows ∝ 1/α): the GF horizon
/// `train.t_max` scaled by `alpha_ref / alpha`, its `atol` divided by it (parameters, and
/// dormant neurons until they jump, are O(α)), and the AGF horizon scaled like the GF time
/// but never past it. Returns `(train, agf)`.
pub fn settings_for_alpha(
    train: &crate::train::TrainConfig,
    agf: &super::AgfOptions,
    alpha_ref: f64,
    alpha: f64,
) -> (crate::train::TrainConfig, super::AgfOptions) {
    let scale = alpha_ref / alpha;
    let mut tc = train.clone();
    tc.t_max *= scale;
    tc.atol /= scale;
    tc.resolve();
    let mut ao = agf.clone();
    ao.t_max = (ao.t_max * scale).min(tc.t_max);
    (tc, ao)
}
