//! `[scaling]`: late-time exponents of the reduced flow, the limit ODE and the simulation with
//! intervals, against the derived law.

use super::*;

/// One row of the exponent table: estimates of the m and a exponents with their intervals.
/// An exponent estimate against its reference, with the measured interval as the
/// tolerance: absolute (scale 1), tolerance = the distance from the estimate to the
/// interval's end on the reference's side, so the row holds iff the reference lies in
/// [lo, hi] (window spread for deterministic curves, seed bootstrap for SGD).
pub(super) fn exponent_row(
    r: &ExponentRow,
    what: &str,
    (v, lo, hi): (f64, f64, f64),
    reference: f64,
) -> Option<AgreementRow> {
    if !(reference.is_finite() && lo.is_finite() && hi.is_finite()) {
        return None;
    }
    let tol = if reference <= v { v - lo } else { hi - v };
    Some(
        AgreementRow::relative_to(
            format!(
                "{what} exponent, {} vs {} (tolerance: {})",
                r.source, r.reference_label, r.interval
            ),
            reference,
            v,
            1.0,
            tol,
        )
        .with_note(format!("interval [{lo:.6}, {hi:.6}]")),
    )
}

pub(super) struct ExponentRow {
    source: &'static str,
    /// `"window spread"`, `"seed bootstrap 95 %"` or `"none"` (deterministic prediction).
    interval: &'static str,
    m: (f64, f64, f64),
    a: (f64, f64, f64),
    /// The values the m and a estimates are compared with.
    reference: (f64, f64),
    reference_label: &'static str,
}

pub(super) fn log_grid(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    (0..=n)
        .map(|i| lo * (hi / lo).powf(i as f64 / n as f64))
        .collect()
}

/// The rows of the simulation's fit window (finite width, far from the asymptotic regime): the
/// simulated window exponent (seeds as replicates, bootstrap) against the finite-N + spread
/// ODE, and the same fit of the finite-N and N = ∞ ODEs; the simulation's points on `fig`.
fn window_rows(
    cfg: &UnlearningConfig,
    sc: &ScalingConfig,
    lm: &LimitModel,
    ctx: &RunContext<'_>,
    out: &RunOutput,
    fig: &mut LinePlot,
    rows: &mut Vec<ExponentRow>,
) -> Result<()> {
    let a0e = cfg.a0_eff(cfg.a0);
    // Finite width: the simulation's window [w0, w1] is far from the asymptotic regime, and the
    // alignment saturates at N^{−1/4}. Compare the simulated window exponent (plain power law,
    // seeds as replicates) with the same fit of the finite-N and N = ∞ ODEs on that window.
    let [w0, w1] = sc.window;
    let t = out.trajectory.column("t").unwrap_or_default();
    let plain = |y: &[f64]| -> Result<f64> { Ok(power_law(&t, y, w0, w1)?.exponent) };
    let mut reps_m = vec![out.trajectory.column("m").unwrap_or_default()];
    let mut reps_a = vec![out.trajectory.column("a").unwrap_or_default()];
    for i in 1..sc.seeds {
        let scfg = cfg.main_sim_config()?;
        let sim = run_sim(
            scfg,
            crate::rng::derive_seed(cfg.seed, &format!("scaling-seed-{i}")),
            cfg.t_max,
            cfg.record_points,
            ctx,
            &format!("scaling replicate {i}"),
        )?;
        reps_m.push(sim.ops.iter().map(|o| o.m).collect());
        reps_a.push(sim.ops.iter().map(|o| o.a).collect());
    }
    let ode_n = if cfg.simulation.parametrization.gamma() == 1.0 {
        let eq = EquiangularModel::new(
            lm.student.clone(),
            lm.teacher.clone(),
            cfg.eps,
            cfg.simulation.width as f64,
        )?;
        let sol = eq.integrate(cfg.m0, 0.0, a0e, &t, 1e-10)?;
        let m: Vec<f64> = sol.iter().map(|x| x[0]).collect();
        let a: Vec<f64> = sol.iter().map(|x| x[2]).collect();
        Some((plain(&m)?, plain(&a)?))
    } else {
        None
    };
    // Finite N plus the pair-overlap spread S (random-init Marchenko–Pastur transient and the
    // SGD-noise feed at λ = ηd/B), the per-neuron and common-mode noise terms and the alignment
    // spread (`theory::unlearning::spread`).
    let ode_spread = if cfg.simulation.parametrization.gamma() == 1.0
        && cfg.simulation.first_layer == FirstLayer::Spherical
    {
        let sol = spread_ode(cfg, lm, a0e, noise_strength(cfg), &t)?;
        let m: Vec<f64> = sol.iter().map(|x| x[0]).collect();
        let a: Vec<f64> = sol.iter().map(|x| x[2]).collect();
        Some((plain(&m)?, plain(&a)?))
    } else {
        None
    };
    let ode_inf = {
        let sol = lm.integrate(cfg.m0, a0e, &t, 1e-10)?;
        let m: Vec<f64> = sol.iter().map(|x| x.0).collect();
        let a: Vec<f64> = sol.iter().map(|x| x.1).collect();
        (plain(&m)?, plain(&a)?)
    };
    let mean_of = |reps: &[Vec<f64>], idx: &[usize]| -> Vec<f64> {
        (0..t.len())
            .map(|k| idx.iter().map(|&i| reps[i][k]).sum::<f64>() / idx.len() as f64)
            .collect()
    };
    let (sim_m, sim_a) = if sc.seeds >= 2 {
        let mut rng = crate::rng::stream(cfg.seed, "scaling-bootstrap");
        let bm = bootstrap_ci(sc.seeds, 2000, &mut rng, |idx| {
            plain(&mean_of(&reps_m, idx))
        })?;
        let ba = bootstrap_ci(sc.seeds, 2000, &mut rng, |idx| {
            plain(&mean_of(&reps_a, idx))
        })?;
        ((-bm.0, -bm.2, -bm.1), ba)
    } else {
        let e = (-plain(&reps_m[0])?, f64::NAN, f64::NAN);
        (e, (plain(&reps_a[0])?, f64::NAN, f64::NAN))
    };
    let all: Vec<usize> = (0..sc.seeds).collect();
    let keep: Vec<usize> = (0..t.len()).filter(|&i| t[i] >= w0 * 0.1).collect();
    let pick = |v: &[f64]| keep.iter().map(|&i| v[i]).collect::<Vec<f64>>();
    fig.series.push(Series::points(
        format!("simulation m (mean of {} seeds)", sc.seeds),
        pick(&t),
        pick(&mean_of(&reps_m, &all)),
    ));
    fig.series.push(Series::points(
        "simulation a",
        pick(&t),
        pick(&mean_of(&reps_a, &all)),
    ));
    rows.push(ExponentRow {
        source: "simulation (window exponent)",
        interval: if sc.seeds >= 2 {
            "seed bootstrap 95 %"
        } else {
            "none"
        },
        m: sim_m,
        a: sim_a,
        reference: ode_spread
            .map(|x| (-x.0, x.1))
            .unwrap_or((f64::NAN, f64::NAN)),
        reference_label: "finite-N + spread ODE (SGD noise), same window",
    });
    if let Some((m, a)) = ode_spread {
        rows.push(ExponentRow {
            source: "finite-N + spread ODE (window exponent)",
            interval: "none",
            m: (-m, f64::NAN, f64::NAN),
            a: (a, f64::NAN, f64::NAN),
            reference: (f64::NAN, f64::NAN),
            reference_label: "",
        });
    }
    if let Some((m, a)) = ode_n {
        rows.push(ExponentRow {
            source: "finite-N ODE (window exponent)",
            interval: "none",
            m: (-m, f64::NAN, f64::NAN),
            a: (a, f64::NAN, f64::NAN),
            reference: (f64::NAN, f64::NAN),
            reference_label: "",
        });
    }
    rows.push(ExponentRow {
        source: "limit ODE N = ∞ (window exponent)",
        interval: "none",
        m: (-ode_inf.0, f64::NAN, f64::NAN),
        a: (ode_inf.1, f64::NAN, f64::NAN),
        reference: (f64::NAN, f64::NAN),
        reference_label: "",
    });
    Ok(())
}

pub(super) fn scaling(
    cfg: &UnlearningConfig,
    sc: &ScalingConfig,
    ctx: &RunContext<'_>,
    out: &mut RunOutput,
) -> Result<()> {
    let lm = cfg.limit(&cfg.teacher)?;
    let Some(law) = lm.scaling_law() else {
        out.notes.push("No late-time decay law: the leading term of the slow flow anchors the alignment (or c_1 c*_1 ≤ 0).".into());
        return Ok(());
    };
    let mut rows: Vec<ExponentRow> = Vec::new();
    let mut fig = LinePlot::new("Late-time scaling", "t", "m, a").scales(Scale::Log, Scale::Log);
    // Corrections to scaling: relative O(m) and O(m²) terms, i.e. t^{−β} and t^{−2β}.
    let om = [law.exponent, 2.0 * law.exponent];
    let spread = |w: &WindowedExponent| (w.exponent, w.exponent - w.spread, w.exponent + w.spread);
    let [r0, r1] = sc.reduced_window;
    let tr = log_grid(r0, r1, 120);
    let m_start = 0.5_f64.min(
        lm.slow_fixed_points()
            .first()
            .map(|f| f.0 * 0.9)
            .unwrap_or(0.5),
    );
    let red = lm.integrate_reduced(m_start, &[&[0.0][..], &tr[..]].concat(), 1e-11)?;
    let (rm, ra): (Vec<f64>, Vec<f64>) = red[1..].iter().copied().unzip();
    let neg = |v: (f64, f64, f64)| (-v.0, -v.2, -v.1);
    let (n_win, ratio) = (sc.windows, sc.window_ratio);
    rows.push(ExponentRow {
        source: "reduced flow",
        interval: "window spread",
        m: neg(spread(&windowed_exponent(
            &tr, &rm, r0, r1, ratio, n_win, &om,
        )?)),
        a: spread(&windowed_exponent(&tr, &ra, r0, r1, ratio, n_win, &om)?),
        reference: (law.exponent, law.exponent),
        reference_label: "derived exponent",
    });
    fig.series
        .push(Series::dashed("reduced flow m", tr.clone(), rm));
    fig.series
        .push(Series::dashed("reduced flow a", tr.clone(), ra));
    let [o0, o1] = sc.ode_window;
    let tf = log_grid(o0, o1, 120);
    let a0e = cfg.a0_eff(cfg.a0);
    let full = lm.integrate(cfg.m0, a0e, &[&[0.0][..], &tf[..]].concat(), 1e-10)?;
    let (fm, fa): (Vec<f64>, Vec<f64>) = full[1..].iter().copied().unzip();
    rows.push(ExponentRow {
        source: "full limit ODE",
        interval: "window spread",
        m: neg(spread(&windowed_exponent(
            &tf, &fm, o0, o1, ratio, n_win, &om,
        )?)),
        a: spread(&windowed_exponent(&tf, &fa, o0, o1, ratio, n_win, &om)?),
        reference: (law.exponent, law.exponent),
        reference_label: "derived exponent",
    });
    fig.series.push(Series::line("full ODE m", tf.clone(), fm));
    fig.series.push(Series::line("full ODE a", tf.clone(), fa));

    window_rows(cfg, sc, &lm, ctx, out, &mut fig, &mut rows)?;
    let mut cols: Vec<Vec<f64>> = vec![Vec::new(); 9];
    let mut fits = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        // Exponents are reported as decay (m) and growth (a) rates, both ≈ +β.
        let within = |v: (f64, f64, f64), x: f64| x >= v.1 && x <= v.2;
        fits.push(json!({"source": r.source, "interval": r.interval, "m_decay_exponent": r.m.0, "m_interval": [r.m.1, r.m.2], "a_growth_exponent": r.a.0, "a_interval": [r.a.1, r.a.2], "m_reference": r.reference.0, "a_reference": r.reference.1, "reference_is": r.reference_label, "m_reference_within": within(r.m, r.reference.0), "a_reference_within": within(r.a, r.reference.1)}));
        for (c, v) in cols.iter_mut().zip([
            i as f64,
            r.m.0,
            r.m.1,
            r.m.2,
            r.a.0,
            r.a.1,
            r.a.2,
            r.reference.0,
            r.reference.1,
        ]) {
            c.push(v);
        }
    }
    for r in &rows {
        for (what, v, reference) in [
            ("m decay", r.m, r.reference.0),
            ("a growth", r.a, r.reference.1),
        ] {
            if let Some(row) = exponent_row(r, what, v, reference) {
                out.agreement.push(row);
            }
        }
    }
    out.summary
        .insert("scaling_exponent_theory".into(), json!(law.exponent));
    out.summary.insert("scaling_fits".into(), json!(fits));
    out.notes.push(format!(
        "Exponent intervals: window spread = max deviation of the corrected-fit exponent over {n_win} sliding windows of ratio {ratio} from the latest window (deterministic curves); seed bootstrap = 95 % percentile interval of the exponent of the seed-averaged simulation ({} seeds, 2000 resamples).",
        sc.seeds
    ));
    out.tables.push(CsvTable {
        name: "scaling".into(),
        columns: [
            "source(0=reduced,1=ode,2=sim,3=spread_ode,4=finite_n_ode,5=inf_ode_window)",
            "m_decay_exponent",
            "m_lo",
            "m_hi",
            "a_growth_exponent",
            "a_lo",
            "a_hi",
            "m_reference",
            "a_reference",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        values: cols,
    });
    fig.series.push(Series::dashed(
        format!("theory a ∝ t^{:.3}", law.exponent),
        tr.clone(),
        tr.iter()
            .map(|t| law.a_prefactor * t.powf(law.exponent))
            .collect(),
    ));
    out.figures.push(fig.figure("scaling", "Late-time decay of m and growth of a (log–log): reduced slow flow, full limit ODE, simulation (seed mean), and the derived power law."));
    Ok(())
}
