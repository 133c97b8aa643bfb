//! `[noise]`: the SGD-noise correction of the alignment (docs/unlearning.md, "SGD noise: the
//! per-neuron correction is refuted"). Online SGD at several batch sizes B minus population GD
//! from the same init (same N = d, η, seed: the O(1/N) and O(η) errors cancel), seeds as
//! replicates, against the prediction `m_noise − m_noiseless` of the 2-D per-neuron noise ODE
//! (`LimitModel::with_noise`) and of the 3-D common-mode ODE (`EquiangularModel::with_noise`),
//! both at `λ = ηd/B`.

use super::*;
use crate::rng::derive_seed;

/// Per-seed trajectories at the comparison times.
fn seed_runs(
    cfg: &UnlearningConfig,
    nc: &NoiseConfig,
    batch: BatchMode,
    ts: &[f64],
    ctx: &RunContext<'_>,
    label: &str,
) -> Result<Vec<Vec<OrderParams>>> {
    (0..nc.seeds)
        .map(|s| {
            let sc = cfg.sim_config(nc.width, nc.width, batch, &cfg.teacher, cfg.a0)?;
            let seed = derive_seed(cfg.seed + s as u64, "noise");
            let r = run_sim(
                sc,
                seed,
                nc.t_max,
                ts.len() + 1,
                ctx,
                &format!("{label} seed {s}"),
            )?;
            Ok(r.ops[1..].to_vec())
        })
        .collect()
}

/// Mean and standard error over seeds of `f(sgd, popgd)` at each time.
fn mean_se(
    sgd: &[Vec<OrderParams>],
    pop: &[Vec<OrderParams>],
    f: impl Fn(&OrderParams, &OrderParams) -> f64,
) -> (Vec<f64>, Vec<f64>) {
    let k = sgd.len() as f64;
    let times = sgd[0].len();
    let per: Vec<Vec<f64>> = sgd
        .iter()
        .zip(pop)
        .map(|(s, p)| s.iter().zip(p).map(|(a, b)| f(a, b)).collect())
        .collect();
    let mean: Vec<f64> = (0..times)
        .map(|i| per.iter().map(|d| d[i]).sum::<f64>() / k)
        .collect();
    let se = (0..times)
        .map(|i| {
            let v = per.iter().map(|d| (d[i] - mean[i]).powi(2)).sum::<f64>() / (k - 1.0);
            (v / k).sqrt()
        })
        .collect();
    (mean, se)
}

/// Runs `[noise]`: table `noise.csv` (one row per batch size and time), summary `noise`, and two
/// agreement rows per batch size at t = T: the 2-D per-neuron and the 3-D common-mode ODE's
/// `m_SGD − m_popGD` against the measured seed mean, the error in units of its standard error
/// (`tolerance` standard errors).
pub(super) fn noise(
    cfg: &UnlearningConfig,
    nc: &NoiseConfig,
    ctx: &RunContext<'_>,
    out: &mut RunOutput,
) -> Result<()> {
    let (n, lr) = (nc.width, cfg.simulation.lr);
    let ts: Vec<f64> = (1..=nc.points)
        .map(|i| nc.t_max * i as f64 / nc.points as f64)
        .collect();
    let pops = seed_runs(cfg, nc, BatchMode::Population, &ts, ctx, "noise popGD")?;
    let lm0 = cfg.limit(&cfg.teacher)?;
    let p0 = (1.0 - cfg.m0 * cfg.m0) / n as f64;
    let base3 = EquiangularModel::new(lm0.student.clone(), lm0.teacher.clone(), cfg.eps, n as f64)?;
    let ode3_0 = base3.integrate(cfg.m0, p0, cfg.a0, &ts, 1e-10)?;
    let ode2_0 = lm0.integrate(cfg.m0, cfg.a0, &ts, 1e-10)?;
    let names = [
        "B",
        "lambda",
        "t",
        "sgd_minus_popgd_m",
        "standard_error",
        "per_neuron_ode",
        "common_mode_ode",
        "p_sgd",
        "p_common_mode_ode",
        "n_pair_q2_sgd_minus_popgd",
    ];
    let mut cols: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let mut summary = Vec::new();
    let last = ts.len() - 1;
    for &b in &nc.batches {
        let lambda = lr * n as f64 / b as f64;
        let label = format!("noise SGD B={b}");
        let sgds = seed_runs(cfg, nc, BatchMode::Online { batch: b }, &ts, ctx, &label)?;
        let (mean, se) = mean_se(&sgds, &pops, |s, p| s.m - p.m);
        let (p_sgd, _) = mean_se(&sgds, &pops, |s, _| s.common_sq);
        let (dq, _) = mean_se(&sgds, &pops, |s, p| (s.pair_q2 - p.pair_q2) * n as f64);
        let ode2 = cfg
            .limit(&cfg.teacher)?
            .with_noise(lambda, 12)?
            .integrate(cfg.m0, cfg.a0, &ts, 1e-9)?;
        let pred2: Vec<f64> = ode2.iter().zip(&ode2_0).map(|(x, y)| x.0 - y.0).collect();
        let ode3 = base3
            .clone()
            .with_noise(lambda, true)
            .integrate(cfg.m0, p0, cfg.a0, &ts, 1e-9)?;
        let pred3: Vec<f64> = ode3.iter().zip(&ode3_0).map(|(x, y)| x[0] - y[0]).collect();
        for i in 0..ts.len() {
            let row = [
                b as f64, lambda, ts[i], mean[i], se[i], pred2[i], pred3[i], p_sgd[i], ode3[i][1],
                dq[i],
            ];
            for (c, v) in cols.iter_mut().zip(row) {
                c.push(v);
            }
        }
        summary.push(json!({"B": b, "lambda": lambda, "t": ts[last], "sgd_minus_popgd_m": mean[last], "standard_error": se[last], "per_neuron_ode": pred2[last], "common_mode_ode": pred3[last], "common_mode_fraction": mean[last].recip() * pred3[last], "p_sgd": p_sgd[last], "p_common_mode_ode": ode3[last][1], "n_pair_q2_sgd_minus_popgd": dq[last]}));
        for (what, pred) in [
            ("2-D per-neuron noise ODE", pred2[last]),
            ("3-D common-mode noise ODE", pred3[last]),
        ] {
            out.agreement.push(
                AgreementRow::relative_to(
                    format!(
                        "SGD noise shift m_SGD − m_popGD at t = {}, B = {b} (λ = {lambda}): {what} (error in standard errors)",
                        ts[last]
                    ),
                    pred,
                    mean[last],
                    se[last],
                    nc.tolerance,
                )
                .with_note(format!(
                    "N = d = {n}, {} seeds from {}, mean ± {:.2e}",
                    nc.seeds, cfg.seed, se[last]
                )),
            );
        }
    }
    out.summary.insert("noise".into(), json!(summary));
    out.tables.push(CsvTable {
        name: "noise".into(),
        columns: names.iter().map(|s| s.to_string()).collect(),
        values: cols,
    });
    Ok(())
}
