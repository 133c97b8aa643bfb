//! Shared pieces of the AGF application experiments (`agf_attention`, `agf_modular`,
//! `group_agf`): the recording schedule that resolves GF drop times and the `drops.csv` table. Drop matching and its errors live in
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

/// The `drops.csv` table: `round, <feature_column>, t_agf, t_gf, loss_agf, loss_gf` (NaN where
/// GF never made the drop); studies append their own columns.
pub fn drops_table(
    drops: &[crate::compare::drops::Drop],
    feature_column: &str,
) -> crate::experiments::CsvTable {
    crate::experiments::CsvTable {
        name: "drops".into(),
        columns: [
            "round",
            feature_column,
            "t_agf",
            "t_gf",
            "loss_agf",
            "loss_gf",
        ]
        .iter()
        .map(|c| c.to_string())
        .collect(),
        values: vec![
            (1..=drops.len()).map(|k| k as f64).collect(),
            drops.iter().map(|d| d.feature as f64).collect(),
            drops.iter().map(|d| d.t_agf).collect(),
            drops.iter().map(|d| d.t_gf.unwrap_or(f64::NAN)).collect(),
            drops.iter().map(|d| d.loss_agf).collect(),
            drops
                .iter()
                .map(|d| d.loss_gf.unwrap_or(f64::NAN))
                .collect(),
        ],
    }
}

/// The settings of a preset written for init scale `alpha_ref`, moved to `alpha` for an
/// α-series run (κ = 3 nets, where the time to the first jump grows ∝ 1/α): the GF horizon
/// `train.t_max` scaled by `alpha_ref / alpha`, its `atol` divided by it (parameters, and
/// dormant neurons until they jump, are O(α)), and the AGF horizon scaled like the GF time
/// but never past it. Returns `(train, agf)`.
pub fn settings_for_alpha(
    train: &crate::train::TrainConfig,
    agf: &crate::theory::agf::AgfOptions,
    alpha_ref: f64,
    alpha: f64,
) -> (crate::train::TrainConfig, crate::theory::agf::AgfOptions) {
    let scale = alpha_ref / alpha;
    let mut tc = train.clone();
    tc.t_max *= scale;
    tc.atol /= scale;
    tc.resolve();
    let mut ao = agf.clone();
    ao.t_max = (ao.t_max * scale).min(tc.t_max);
    (tc, ao)
}
