//! Shared pieces of the AGF application experiments (`agf_attention`, `agf_modular`):
//! matching an AGF staircase to a gradient-flow loss curve and the run.json `drops` list
//! (issue 4 contract).
//!
//! Conventions: time t is gradient-flow time of L = ½·mean_n ‖f − y‖²; a GF drop time is the
//! first crossing of the midpoint (ℓ_{k−1} + ℓ_k)/2 of consecutive AGF levels
//! ([`midpoint_crossings`]); the GF plateau loss after drop k is the GF loss at the
//! log-midpoint √(t_k t_{k+1}) of the plateau (the last plateau: at the final time).

use crate::analysis::midpoint_crossings;
use serde_json::{json, Value};

/// An AGF staircase: jump times, the levels after each jump (ℓ^(1), …) and ℓ^(0), and the
/// feature learned in each round.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Staircase {
    pub initial_loss: f64,
    pub times: Vec<f64>,
    pub levels: Vec<f64>,
    pub features: Vec<usize>,
}

/// One matched drop.
#[derive(Debug, Clone, PartialEq)]
pub struct Drop {
    pub t_agf: f64,
    pub t_gf: Option<f64>,
    pub loss_agf: f64,
    pub loss_gf: Option<f64>,
    pub feature: usize,
}

/// Linear interpolation of a recorded curve at time `t` (in log-time between recorded points).
pub fn value_at(t: &[f64], y: &[f64], at: f64) -> f64 {
    if at <= t[0] {
        return y[0];
    }
    for i in 1..t.len() {
        if t[i] >= at {
            let (a, b) = (t[i - 1], t[i]);
            let frac = if a > 0.0 {
                (at.ln() - a.ln()) / (b.ln() - a.ln())
            } else {
                (at - a) / (b - a)
            };
            return y[i - 1] + frac * (y[i] - y[i - 1]);
        }
    }
    *y.last().expect("non-empty curve")
}

/// Match an AGF staircase with a GF loss curve (module docs).
pub fn match_drops(stairs: &Staircase, t: &[f64], loss: &[f64]) -> Vec<Drop> {
    let mut lv = vec![stairs.initial_loss];
    lv.extend(&stairs.levels);
    let cross = midpoint_crossings(t, loss, &lv);
    let t_end = *t.last().unwrap_or(&0.0);
    (0..stairs.times.len())
        .map(|k| {
            let t_gf = cross[k];
            let next = cross.get(k + 1).copied().flatten();
            let loss_gf = t_gf.map(|a| match next {
                Some(b) => value_at(t, loss, (a * b).sqrt()),
                None => value_at(t, loss, t_end),
            });
            Drop {
                t_agf: stairs.times[k],
                t_gf,
                loss_agf: stairs.levels[k],
                loss_gf,
                feature: stairs.features[k],
            }
        })
        .collect()
}

/// Max relative jump-time and level errors over drops that GF reached:
/// |t_agf − t_gf|/t_gf and |ℓ_agf − ℓ_gf|/ℓ_gf (levels below `loss_floor` compared absolutely
/// against it, so a zero final level does not divide by zero).
pub fn max_errors(drops: &[Drop], loss_floor: f64) -> (f64, f64) {
    let mut et = 0.0f64;
    let mut el = 0.0f64;
    for d in drops {
        if let Some(tg) = d.t_gf {
            et = et.max((d.t_agf - tg).abs() / tg);
        }
        if let Some(lg) = d.loss_gf {
            el = el.max((d.loss_agf - lg).abs() / lg.abs().max(loss_floor));
        }
    }
    (et, el)
}

/// Number of leading drops that learn the same feature as the first one: the first cascade
/// (AGF §3.4: several quadratic neurons in turn fit the largest Fourier component before
/// the next frequency starts). Its errors are reported apart on agf-modular, where the later
/// cascades' times depend on which of several equivalent fits the previous one ended in
/// (docs/agf.md, agf-modular, *Why round 6 (and round 5) disagree*).
pub fn first_cascade_len(drops: &[Drop]) -> usize {
    drops
        .iter()
        .take_while(|d| Some(d.feature) == drops.first().map(|f| f.feature))
        .count()
}

/// The run.json `drops` list.
pub fn drops_json(drops: &[Drop]) -> Value {
    Value::Array(
        drops
            .iter()
            .map(|d| json!({"t_agf": d.t_agf, "t_gf": d.t_gf, "loss_agf": d.loss_agf, "loss_gf": d.loss_gf, "feature": d.feature}))
            .collect(),
    )
}

/// Staircase as a step series (x = t_start, t_1, t_2, …, t_end; y = ℓ^(0), ℓ^(1), …);
/// `t_start` > 0 keeps it visible on a log time axis.
pub fn step_series(stairs: &Staircase, t_start: f64, t_end: f64) -> (Vec<f64>, Vec<f64>) {
    let mut x = vec![t_start];
    x.extend(&stairs.times);
    let mut y = vec![stairs.initial_loss];
    y.extend(&stairs.levels);
    x.push(t_end.max(*x.last().unwrap_or(&0.0)));
    y.push(*y.last().unwrap_or(&0.0));
    (x, y)
}

/// The recording schedule of `tc` plus 400 equally spaced times in ±5% windows around each
/// predicted jump time, so that GF midpoint crossings are located to ~0.03% of t (the
/// recording grid does not change the dynamics: flow records by dense output).
pub fn refined_schedule(
    tc: &crate::train::TrainConfig,
    jumps: &[f64],
) -> crate::Result<crate::train::Schedule> {
    let mut times = tc.record.times(tc.t_max, None)?;
    for &tj in jumps {
        let (a, b) = (0.95 * tj, (1.05 * tj).min(tc.t_max));
        if a < b {
            times.extend((0..400).map(|i| a + (b - a) * i as f64 / 399.0));
        }
    }
    times.retain(|t| *t >= 0.0 && *t <= tc.t_max);
    times.sort_by(f64::total_cmp);
    times.dedup();
    Ok(crate::train::Schedule::Times { times })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drop(feature: usize, t_agf: f64, t_gf: f64) -> Drop {
        Drop {
            t_agf,
            t_gf: Some(t_gf),
            loss_agf: 1.0,
            loss_gf: Some(1.0),
            feature,
        }
    }

    /// The first cascade is the leading run of the first drop's feature; its error is the
    /// maximum over that run only.
    #[test]
    fn first_cascade_is_the_leading_run_of_one_feature() {
        let drops = vec![
            drop(1, 10.0, 10.1),
            drop(1, 20.0, 19.0),
            drop(3, 30.0, 40.0),
            drop(1, 50.0, 50.0),
        ];
        assert_eq!(first_cascade_len(&drops), 2);
        let (et, _) = max_errors(&drops[..first_cascade_len(&drops)], 1e-9);
        assert!((et - 1.0 / 19.0).abs() < 1e-15, "{et}");
        assert_eq!(max_errors(&drops, 1e-9).0, 0.25);
        assert_eq!(first_cascade_len(&[]), 0);
    }
}
