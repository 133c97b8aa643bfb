//! Recording schedules: at which gradient-flow times observers are called.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// When to record. Times are gradient-flow times (t = lr × steps for discrete steppers).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    /// Every `every` steps of a discrete stepper (for gradient flow: every `every·dt` in
    /// time, with `dt = t_max / steps_hint`). Use with GD/SGD for exact step counts.
    Every { every: u64 },
    /// `points` times log-spaced between `t_min` and `t_max` (plus t = 0): the natural grid
    /// for staircases whose plateaus grow like log(1/α).
    Log {
        points: usize,
        /// First positive time; defaults to `t_max · 1e-4`.
        #[serde(default)]
        t_min: Option<f64>,
    },
    /// `points` equally spaced times in [0, t_max].
    Linear { points: usize },
    /// Explicit times (sorted, within [0, t_max]).
    Times { times: Vec<f64> },
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule::Linear { points: 400 }
    }
}

impl Schedule {
    /// The recording times in [0, t_max], sorted, starting with 0. `step_dt` is the time
    /// per step of a discrete stepper (lr), if any.
    pub fn times(&self, t_max: f64, step_dt: Option<f64>) -> Result<Vec<f64>> {
        if !(t_max.is_finite() && t_max > 0.0) {
            return Err(Error::config(
                "train.t_max",
                format!("must be a finite number > 0, got {t_max}"),
            ));
        }
        let mut ts = match self {
            Schedule::Every { every } => {
                if *every == 0 {
                    return Err(Error::config("train.record.every", "must be ≥ 1"));
                }
                let dt = step_dt.unwrap_or(t_max / 1000.0) * *every as f64;
                let k = (t_max / dt).floor() as usize;
                (0..=k).map(|i| i as f64 * dt).collect::<Vec<_>>()
            }
            Schedule::Log { points, t_min } => {
                if *points < 2 {
                    return Err(Error::config(
                        "train.record.points",
                        "need at least 2 points",
                    ));
                }
                let t0 = t_min.unwrap_or(t_max * 1e-4);
                if !(t0 > 0.0 && t0 < t_max) {
                    return Err(Error::config(
                        "train.record.t_min",
                        format!("must be in (0, t_max = {t_max}), got {t0}"),
                    ));
                }
                let (a, b) = (t0.ln(), t_max.ln());
                let mut v = vec![0.0];
                v.extend(
                    (0..*points).map(|i| (a + (b - a) * i as f64 / (*points - 1) as f64).exp()),
                );
                v
            }
            Schedule::Linear { points } => {
                if *points < 2 {
                    return Err(Error::config(
                        "train.record.points",
                        "need at least 2 points",
                    ));
                }
                (0..*points)
                    .map(|i| t_max * i as f64 / (*points - 1) as f64)
                    .collect()
            }
            Schedule::Times { times } => {
                let mut v = times.clone();
                if v.iter().any(|t| !t.is_finite() || *t < 0.0 || *t > t_max) {
                    return Err(Error::config(
                        "train.record.times",
                        format!("every time must be in [0, t_max = {t_max}]"),
                    ));
                }
                v.sort_by(f64::total_cmp);
                if v.first() != Some(&0.0) {
                    v.insert(0, 0.0);
                }
                v
            }
        };
        if let Some(last) = ts.last_mut() {
            // snap the final point onto t_max to avoid round-off overshoot
            if (*last - t_max).abs() <= 1e-12 * t_max {
                *last = t_max;
            }
        }
        ts.dedup();
        Ok(ts)
    }
}
