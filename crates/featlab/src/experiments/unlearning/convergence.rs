//! `[convergence]`: simulation-vs-ODE error against width and batch size, with log–log slopes.

use super::*;

pub(super) fn slope(x: &[f64], y: &[f64]) -> Result<(f64, f64)> {
    let lx: Vec<f64> = x.iter().map(|v| v.ln()).collect();
    let ly: Vec<f64> = y.iter().map(|v| v.ln()).collect();
    let ls = least_squares(&[vec![1.0; lx.len()], lx], &ly)?;
    Ok((ls.coef[1], ls.ci95[1]))
}

/// One convergence series: the log–log slope s (± its 95% interval ci) of `errs` against
/// `x` ([`slope`]), the points on `fig` labelled `label` + " (slope s ± ci)", and the
/// summary keys `{key}_errors`, `{key}_error_slope`, `{key}_error_slope_ci95`. Returns s.
pub(super) fn error_slope_series(
    fig: &mut LinePlot,
    out: &mut RunOutput,
    key: &str,
    label: &str,
    x: &[f64],
    errs: &[f64],
) -> Result<f64> {
    let (s, ci) = slope(x, errs)?;
    fig.series.push(Series::points(
        format!("{label} (slope {s:.2} ± {ci:.2})"),
        x.to_vec(),
        errs.to_vec(),
    ));
    out.summary.insert(format!("{key}_errors"), json!(errs));
    out.summary.insert(format!("{key}_error_slope"), json!(s));
    out.summary
        .insert(format!("{key}_error_slope_ci95"), json!(ci));
    Ok(s)
}

pub(super) fn convergence(
    cfg: &UnlearningConfig,
    c: &ConvergenceConfig,
    ctx: &RunContext<'_>,
    out: &mut RunOutput,
) -> Result<()> {
    let ts = linspace(0.0, c.t_max, 101);
    let lm = cfg.limit(&cfg.teacher)?;
    let mut fig = LinePlot::new(
        "Simulation vs limit ODE: max_t |m − m_ODE|",
        "N (width) or B (batch)",
        "max error",
    )
    .scales(Scale::Log, Scale::Log);
    if c.widths.len() >= 2 {
        let ode = lm.integrate(cfg.m0, cfg.a0, &ts, 1e-10)?;
        let mut errs = Vec::new();
        for &n in &c.widths {
            let d = ((c.dim_ratio * n as f64).round() as usize).max(n + 1);
            let mut sc = cfg.sim_config(n, d, BatchMode::Population, &cfg.teacher, cfg.a0)?;
            // Mean-field units throughout (the width study compares to the ODE started at a0).
            sc.gamma = 1.0;
            sc.a0 = cfg.a0;
            sc.orthogonal_init = false;
            ctx.progress.start(&format!("population flow N={n}"), 1);
            let (mut flow, y0) = ParticleFlow::new(
                sc.clone(),
                crate::rng::derive_seed(cfg.seed, &format!("width-{n}")),
            )?;
            let sol = solve(
                &mut flow,
                &DOPRI5,
                PidController::new(1e-7, 1e-10),
                0.0,
                c.t_max,
                &y0,
                &ts,
                10_000_000,
            )?;
            ctx.progress.finish();
            let q = GaussHermite::new(16)?;
            let e = sol
                .ys
                .iter()
                .zip(&ode)
                .map(|(y, (m, _))| (order_params(&sc, &y[..n * d], &y[n * d..], &q).m - m).abs())
                .fold(0.0, f64::max);
            errs.push(e);
        }
        let w: Vec<f64> = c.widths.iter().map(|v| *v as f64).collect();
        let label = format!("population flow, d = {}·N", c.dim_ratio);
        let s = error_slope_series(&mut fig, out, "width", &label, &w, &errs)?;
        let ci = out.summary["width_error_slope_ci95"]
            .as_f64()
            .unwrap_or(f64::NAN);
        out.agreement.push(
            AgreementRow::relative_to(
                "population flow: log–log slope of max_t |m − m_ODE| over width vs −1 (O(1/N) finite-width corrections; tolerance: the fit's 95 % interval)",
                -1.0,
                s,
                1.0,
                ci,
            )
            .with_note(format!("widths {w:?}")),
        );
        fig.series.push(Series::dashed(
            "fit",
            w.clone(),
            w.iter().map(|x| errs[0] * (x / w[0]).powf(s)).collect(),
        ));
        out.tables.push(CsvTable {
            name: "convergence_width".into(),
            columns: vec!["width".into(), "max_error_m".into()],
            values: vec![w, errs],
        });
    }
    if c.batches.len() >= 2 {
        let ode = lm.integrate(cfg.m0, cfg.a0_eff(cfg.a0), &ts, 1e-10)?;
        let mut errs = Vec::new();
        for &b in &c.batches {
            let sc = cfg.sim_config(
                cfg.simulation.width,
                cfg.simulation.dim,
                BatchMode::Online { batch: b },
                &cfg.teacher,
                cfg.a0,
            )?;
            let sim = run_sim(
                sc,
                crate::rng::derive_seed(cfg.seed, &format!("batch-{b}")),
                c.t_max,
                ts.len(),
                ctx,
                &format!("SGD B={b}"),
            )?;
            let e = sim
                .ops
                .iter()
                .zip(&ode)
                .map(|(o, (m, _))| (o.m - m).abs())
                .fold(0.0, f64::max);
            errs.push(e);
        }
        let bs: Vec<f64> = c.batches.iter().map(|v| *v as f64).collect();
        let label = format!(
            "online SGD, N={}, d={}",
            cfg.simulation.width, cfg.simulation.dim
        );
        error_slope_series(&mut fig, out, "batch", &label, &bs, &errs)?;
        out.tables.push(CsvTable {
            name: "convergence_batch".into(),
            columns: vec!["batch".into(), "max_error_m".into()],
            values: vec![bs, errs],
        });
    }
    if c.sgd_widths.len() >= 2 {
        sgd_width_series(cfg, c, &lm, &ts, ctx, out, &mut fig)?;
    }
    out.figures.push(fig.figure("convergence", "Maximum alignment error between the finite system and the limit ODE, against width N (population gradient flow, d grown with N; online SGD with B grown with N) and batch size B (online SGD at fixed N), with fitted log–log slopes and 95 % intervals; the SGD width series also against the finite-N ODE with the pair-overlap spread at its λ = ηd/B."));
    Ok(())
}

/// The `[convergence] sgd_widths` series: online SGD at each width N with `d = dim_ratio·N` and
/// `B` from the batch rule, seed-averaged m against the limit ODE (all t) and, for the
/// mean-field spherical model, the finite-N spread ODE at `λ = ηd/B` (`t ≥ finite_n_from`).
pub(super) fn sgd_width_series(
    cfg: &UnlearningConfig,
    c: &ConvergenceConfig,
    lm: &LimitModel,
    ts: &[f64],
    ctx: &RunContext<'_>,
    out: &mut RunOutput,
    fig: &mut LinePlot,
) -> Result<()> {
    let Some(rule) = c.batch_scaling else {
        return Err(Error::config(
            "convergence.batch_scaling",
            "sgd_widths needs a batch rule",
        ));
    };
    let finite_n = cfg.simulation.parametrization.gamma() == 1.0
        && cfg.simulation.first_layer == FirstLayer::Spherical;
    let mut rows: [Vec<f64>; 6] = Default::default();
    for &n in &c.sgd_widths {
        let d = ((c.dim_ratio * n as f64).round() as usize).max(2);
        let b = rule.batch(n);
        let sc = cfg.sim_config(n, d, BatchMode::Online { batch: b }, &cfg.teacher, cfg.a0)?;
        let lambda = sc.lr * d as f64 / b as f64;
        let a0e = sc.a0;
        let mut m_mean = vec![0.0; ts.len()];
        for i in 0..c.sgd_seeds {
            let sim = run_sim(
                sc.clone(),
                crate::rng::derive_seed(cfg.seed, &format!("sgd-width-{n}-{i}")),
                c.t_max,
                ts.len(),
                ctx,
                &format!("SGD N={n} B={b} seed {i}"),
            )?;
            for (acc, o) in m_mean.iter_mut().zip(&sim.ops) {
                *acc += o.m / c.sgd_seeds as f64;
            }
        }
        let ode = lm.integrate(cfg.m0, a0e, ts, 1e-10)?;
        let e_lim = m_mean
            .iter()
            .zip(&ode)
            .map(|(m, (mo, _))| (m - mo).abs())
            .fold(0.0, f64::max);
        let e_fin = if finite_n {
            let sol = spread_ode_at(cfg, lm, (n, d), a0e, lambda, ts)?;
            ts.iter()
                .zip(m_mean.iter().zip(&sol))
                .filter(|(t, _)| **t >= c.finite_n_from)
                .map(|(_, (m, y))| (m - y[0]).abs())
                .fold(0.0, f64::max)
        } else {
            f64::NAN
        };
        for (row, v) in rows
            .iter_mut()
            .zip([n as f64, d as f64, b as f64, lambda, e_lim, e_fin])
        {
            row.push(v);
        }
    }
    let [w, dims, bs, lambdas, e_lim, e_fin] = rows;
    let label = match rule {
        BatchScaling::Linear { factor } => format!("B = {factor}·N"),
        BatchScaling::Quadratic { divisor } => format!("B = N²/{divisor}"),
    };
    let series = format!("online SGD, {label}, d = {}·N, vs limit ODE", c.dim_ratio);
    error_slope_series(fig, out, "sgd_width", &series, &w, &e_lim)?;
    out.summary.insert("sgd_width_batches".into(), json!(bs));
    out.summary
        .insert("sgd_width_lambdas".into(), json!(lambdas));
    if finite_n {
        let series = format!(
            "online SGD, {label}, vs finite-N spread ODE, t ≥ {}",
            c.finite_n_from
        );
        error_slope_series(fig, out, "sgd_width_finite_n", &series, &w, &e_fin)?;
    }
    out.tables.push(CsvTable {
        name: "convergence_sgd_width".into(),
        columns: vec![
            "width".into(),
            "dim".into(),
            "batch".into(),
            "lambda".into(),
            "max_error_m".into(),
            "max_error_m_finite_n".into(),
        ],
        values: vec![w, dims, bs, lambdas, e_lim, e_fin],
    });
    Ok(())
}
