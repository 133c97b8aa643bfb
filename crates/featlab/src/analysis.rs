//! Reading dynamics off recorded curves: drop times of a staircase loss.

/// Drop times of a staircase: for consecutive plateau levels ℓ_{k−1} > ℓ_k, the k-th drop
/// time is the first time the loss crosses the midpoint (ℓ_{k−1} + ℓ_k)/2 (the AGF paper's
/// convention, Kunin et al. 2025), located by linear interpolation in log-loss between
/// the two recorded points that bracket it. `levels` starts with the initial level ℓ_0;
/// the result has `levels.len() − 1` entries, `None` where the curve never crosses.
pub fn midpoint_crossings(t: &[f64], loss: &[f64], levels: &[f64]) -> Vec<Option<f64>> {
    let mut out = Vec::new();
    let mut start = 0usize;
    for k in 1..levels.len() {
        let target = 0.5 * (levels[k - 1] + levels[k]);
        let mut found = None;
        for i in start.max(1)..t.len() {
            if loss[i] <= target && loss[i - 1] > target {
                let (l0, l1) = (loss[i - 1], loss[i]);
                let frac = if l0 > 0.0 && l1 > 0.0 && target > 0.0 {
                    (l0.ln() - target.ln()) / (l0.ln() - l1.ln())
                } else {
                    (l0 - target) / (l0 - l1)
                };
                found = Some(t[i - 1] + frac * (t[i] - t[i - 1]));
                start = i;
                break;
            }
        }
        out.push(found);
    }
    out
}

/// Count plateaus and drops of a loss curve recorded on a log-spaced time grid, without
/// theory: a drop is a maximal run of rows where the loss falls by more than `drop_factor`
/// per row-span of `window` rows; plateaus are the stretches between drops (and before the
/// first). Returns the drop onset times.
pub fn detect_drops(t: &[f64], loss: &[f64], window: usize, drop_factor: f64) -> Vec<f64> {
    let n = t.len();
    let mut drops = Vec::new();
    let mut in_drop = false;
    for i in window..n {
        let falling = loss[i] > 0.0 && loss[i - window] / loss[i] > drop_factor;
        if falling && !in_drop {
            drops.push(t[i - window]);
            in_drop = true;
        } else if !falling {
            in_drop = false;
        }
    }
    drops
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn crossings_of_a_synthetic_staircase() {
        // loss steps from 4 → 2 at t=1 and 2 → 1 at t=3 (smoothed)
        let t: Vec<f64> = (0..400).map(|i| i as f64 * 0.01).collect();
        let loss: Vec<f64> = t
            .iter()
            .map(|&s| {
                1.0 + 1.0 / (1.0 + ((s - 3.0) * 40.0).exp())
                    + 2.0 / (1.0 + ((s - 1.0) * 40.0).exp())
            })
            .collect();
        let c = midpoint_crossings(&t, &loss, &[4.0, 2.0, 1.0]);
        assert!((c[0].unwrap() - 1.0).abs() < 0.01, "{c:?}");
        assert!((c[1].unwrap() - 3.0).abs() < 0.01, "{c:?}");
        let none = midpoint_crossings(&t, &loss, &[4.0, 2.0, 1.0, 0.1]);
        assert!(none[2].is_none());
    }
}
