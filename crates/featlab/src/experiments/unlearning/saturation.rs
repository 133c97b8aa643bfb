//! `[saturation]`: the finite-width stall of unlearning (docs/unlearning.md, "Finite-width
//! saturation"). Population GD and online SGD at widths N (d = N, random orthogonal parts)
//! against the limit ODE (N = ∞) and the finite-N equiangular ODE from the simplex (p = 0), whose
//! alignment plateaus at the self-interaction fixed point `m_∞ = N^{−1/4}` (σ = c_1h_1 + c_2h_2,
//! σ* = c*_1h_1; step 11 of the derivation).

use super::*;

/// One width of the saturation table.
struct SaturationRow {
    n: usize,
    /// `(N = ∞ ODE, finite-N ODE)` m at the comparison times.
    ode: (Vec<f64>, Vec<f64>),
    pop: Vec<OrderParams>,
    sgd: Option<Vec<OrderParams>>,
    fixed_point_m: f64,
}

fn max_gap(ops: &[OrderParams], m: &[f64]) -> f64 {
    ops.iter()
        .zip(m)
        .map(|(o, x)| (o.m - x).abs())
        .fold(0.0, f64::max)
}

/// Simulations and ODEs at width `n` on the times `ts` (`T·i/points`, i = 1..points).
fn width_row(
    cfg: &UnlearningConfig,
    sat: &SaturationConfig,
    n: usize,
    ts: &[f64],
    ctx: &RunContext<'_>,
) -> Result<SaturationRow> {
    let lm = cfg.limit(&cfg.teacher)?;
    let inf: Vec<f64> = lm
        .integrate(cfg.m0, cfg.a0, ts, 1e-10)?
        .iter()
        .map(|x| x.0)
        .collect();
    let eq = EquiangularModel::new(lm.student.clone(), lm.teacher.clone(), cfg.eps, n as f64)?;
    let simplex: Vec<f64> = eq
        .integrate(cfg.m0, 0.0, cfg.a0, ts, 1e-10)?
        .iter()
        .map(|x| x[0])
        .collect();
    let fixed_point_m = eq
        .simplex_fixed_points()
        .first()
        .map(|f| f.0)
        .unwrap_or(f64::NAN);
    let points = ts.len() + 1;
    let run = |batch: BatchMode, label: String| -> Result<Vec<OrderParams>> {
        let sc = cfg.sim_config(n, n, batch, &cfg.teacher, cfg.a0)?;
        // Every width and mode starts from the config seed (as the study always did).
        let r = run_sim(sc, cfg.seed, sat.t_max, points, ctx, &label)?;
        Ok(r.ops[1..].to_vec())
    };
    let pop = run(BatchMode::Population, format!("saturation popGD N={n}"))?;
    let sgd = if sat.sgd_widths.contains(&n) {
        let batch = sat.batch_factor * n;
        Some(run(
            BatchMode::Online { batch },
            format!("saturation SGD N={n} B={batch}"),
        )?)
    } else {
        None
    };
    Ok(SaturationRow {
        n,
        ode: (inf, simplex),
        pop,
        sgd,
        fixed_point_m,
    })
}

/// Runs `[saturation]`: table `saturation.csv`, summary `saturation`, and one agreement row per
/// width: the deviation `m(T) − m_∞(T)` of population GD from the N = ∞ ODE against the
/// finite-N ODE's (no free parameter).
pub(super) fn saturation(
    cfg: &UnlearningConfig,
    sat: &SaturationConfig,
    ctx: &RunContext<'_>,
    out: &mut RunOutput,
) -> Result<()> {
    let ts: Vec<f64> = (1..=sat.points)
        .map(|i| sat.t_max * i as f64 / sat.points as f64)
        .collect();
    let mut rows = Vec::new();
    for &n in &sat.widths {
        rows.push(width_row(cfg, sat, n, &ts, ctx)?);
    }
    let last = ts.len() - 1;
    let names = [
        "N",
        "plateau_n_pow_minus_quarter",
        "fixed_point_m",
        "finite_n_ode_m_T",
        "popgd_m_T",
        "sgd_m_T",
        "limit_ode_m_T",
        "popgd_vs_finite_n_ode_max",
        "sgd_vs_finite_n_ode_max",
        "popgd_vs_limit_ode_max",
        "deviation_theory",
        "deviation_popgd",
        "popgd_n_pair_q2_T",
        "sgd_n_pair_q2_T",
        "sgd_common_sq_T",
    ];
    let mut cols: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let mut summary = Vec::new();
    for r in &rows {
        let nf = r.n as f64;
        let (inf, fin) = &r.ode;
        let sgd_t =
            |f: &dyn Fn(&OrderParams) -> f64| r.sgd.as_ref().map_or(f64::NAN, |s| f(&s[last]));
        let dev_th = fin[last] - inf[last];
        let dev_pop = r.pop[last].m - inf[last];
        let vals = [
            nf,
            nf.powf(-0.25),
            r.fixed_point_m,
            fin[last],
            r.pop[last].m,
            sgd_t(&|o| o.m),
            inf[last],
            max_gap(&r.pop, fin),
            r.sgd.as_ref().map_or(f64::NAN, |s| max_gap(s, fin)),
            max_gap(&r.pop, inf),
            dev_th,
            dev_pop,
            r.pop[last].pair_q2 * nf,
            sgd_t(&|o| o.pair_q2 * nf),
            sgd_t(&|o| o.common_sq),
        ];
        for (c, v) in cols.iter_mut().zip(vals) {
            c.push(v);
        }
        summary.push(
            names
                .iter()
                .zip(vals)
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect::<serde_json::Map<_, _>>(),
        );
        out.agreement.push(
            AgreementRow::relative(
                format!(
                    "finite-width stall N = {}: m(T) − m_∞(T), population GD vs finite-N ODE",
                    r.n
                ),
                dev_th,
                dev_pop,
                sat.tolerance,
            )
            .with_note(format!(
                "T = {}, d = N, seed {}, random orthogonal parts (O(1/d) transient)",
                sat.t_max, cfg.seed
            )),
        );
    }
    out.summary.insert("saturation".into(), json!(summary));
    out.summary.insert("saturation_times".into(), json!(ts));
    out.tables.push(CsvTable {
        name: "saturation".into(),
        columns: names.iter().map(|s| s.to_string()).collect(),
        values: cols,
    });
    Ok(())
}
