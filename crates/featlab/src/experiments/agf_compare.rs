//! Shared pieces of the AGF application experiments (`agf_attention`, `agf_modular`): the
//! recording schedule that resolves GF drop times. Drop matching and its errors live in
//! [`crate::compare::drops`], one definition for every AGF study.

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
