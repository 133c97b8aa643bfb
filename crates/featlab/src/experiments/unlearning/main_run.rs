//! The main run of every `unlearning` config: limit ODE against the finite-width simulation,
//! the finite-N references, the fast–slow analysis and the phase portrait.

use super::*;

/// Finite-width references of [`main_run`].
pub(super) struct FiniteWidth {
    /// `m_theory_finite_n`: the spread ODE (spherical) or the equiangular ODE.
    m: Vec<f64>,
    /// `a_theory_finite_n`, the same reference's second layer.
    a: Vec<f64>,
    /// The equiangular (m, a) trajectory.
    equiangular: (Vec<f64>, Vec<f64>),
    /// True if `m` is the spread ODE.
    spread: bool,
    fixed_points: Vec<(f64, f64)>,
}

/// The main run: simulation and limit ODE at the recording times, the trajectory columns, the
/// agreement rows and summary keys. (About 165 lines: one straight sequence of columns and
/// summary keys; the finite-width references, their summary, the fast–slow summary and the
/// figures are split out.)
pub(super) fn main_run(
    cfg: &UnlearningConfig,
    ctx: &RunContext<'_>,
    out: &mut RunOutput,
) -> Result<()> {
    let lm = cfg.limit(&cfg.teacher)?;
    let a0e = cfg.a0_eff(cfg.a0);
    let sc = cfg.main_sim_config()?;
    let sim = run_sim(
        sc,
        cfg.seed,
        cfg.t_max,
        cfg.record_points,
        ctx,
        "simulation",
    )?;
    let t = sim.t.clone();
    let ode = lm.integrate(cfg.m0, a0e, &t, 1e-10)?;
    let m_th: Vec<f64> = ode.iter().map(|p| p.0).collect();
    let a_th: Vec<f64> = ode.iter().map(|p| p.1).collect();
    let l_th: Vec<f64> = ode.iter().map(|p| lm.loss(p.0, p.1)).collect();
    let m: Vec<f64> = sim.ops.iter().map(|o| o.m).collect();
    let a: Vec<f64> = sim.ops.iter().map(|o| o.a).collect();
    let loss: Vec<f64> = sim.ops.iter().map(|o| o.loss).collect();
    let mut traj = Trajectory {
        columns: vec!["t".into(), "loss".into()],
        rows: t.iter().zip(&loss).map(|(t, l)| vec![*t, *l]).collect(),
    };
    traj.push_column("m", &m)?;
    traj.push_column("a", &a)?;
    traj.push_column("m_theory", &m_th)?;
    traj.push_column("a_theory", &a_th)?;
    traj.push_column("loss_theory", &l_th)?;
    traj.push_column(
        "m_std",
        &sim.ops.iter().map(|o| o.m_std).collect::<Vec<_>>(),
    )?;
    traj.push_column(
        "a_std",
        &sim.ops.iter().map(|o| o.a_std).collect::<Vec<_>>(),
    )?;
    traj.push_column(
        "w_norm",
        &sim.ops.iter().map(|o| o.w_norm).collect::<Vec<_>>(),
    )?;
    let lambda = noise_strength(cfg);
    // Finite-width references, mean-field only: the exact equiangular (m, p, a) ODE at the
    // simulation's N (simplex start, p = 0: gradient descent removes the common orthogonal
    // component quickly) and, for the spherical first layer, the SpreadModel (finite N, the
    // pair-overlap spread with the random-init transient and the SGD-noise feed at λ = ηd/B).
    // `m_theory_finite_n` is the SpreadModel where it applies (the better reference for SGD,
    // docs/unlearning.md), else the equiangular ODE; the latter is also kept at the end as
    // `m_theory_equiangular`.
    let finite_n = finite_width_references(cfg, &lm, a0e, lambda, &t)?;
    if let Some(fw) = &finite_n {
        traj.push_column("m_theory_finite_n", &fw.m)?;
        traj.push_column("a_theory_finite_n", &fw.a)?;
    }
    traj.push_column(
        "common_sq",
        &sim.ops.iter().map(|o| o.common_sq).collect::<Vec<_>>(),
    )?;
    traj.push_column(
        "pair_q2",
        &sim.ops.iter().map(|o| o.pair_q2).collect::<Vec<_>>(),
    )?;
    let mut noisy: Option<Vec<f64>> = None;
    if cfg.noise_correction && lambda > 0.0 {
        let ln = cfg
            .limit(&cfg.teacher)?
            .with_noise(lambda, 2 * cfg.student.len().max(cfg.teacher.len()) + 6)?;
        let sol = ln.integrate(cfg.m0, a0e, &t, 1e-9)?;
        let mn: Vec<f64> = sol.iter().map(|p| p.0).collect();
        traj.push_column("m_noise_theory", &mn)?;
        noisy = Some(mn);
    }
    if let Some(fw) = &finite_n {
        traj.push_column("m_theory_equiangular", &fw.equiangular.0)?;
        traj.push_column("a_theory_equiangular", &fw.equiangular.1)?;
    }
    let err_m = m
        .iter()
        .zip(&m_th)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    let err_a = a
        .iter()
        .zip(&a_th)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    let (pk, tpk, fin, drop) = peak_final(&t, &m);
    let (pk_th, tpk_th, fin_th, drop_th) = peak_final(&t, &m_th);
    let m_std: Vec<f64> = sim.ops.iter().map(|o| o.m_std).collect();
    let at = |tq: f64| t.iter().position(|x| *x == tq).unwrap_or(t.len() - 1);
    let n_label = format!("N = {}, d = {}", cfg.simulation.width, cfg.simulation.dim);
    for (what, th_v, sim_v, i) in [
        ("peak alignment max_t m", pk_th, pk, at(tpk)),
        ("final alignment m(T)", fin_th, fin, t.len() - 1),
    ] {
        out.agreement.push(
            AgreementRow::relative_to(
                format!(
                    "{what}: simulation vs limit ODE (tolerance: the measured spread std_j m_j)"
                ),
                th_v,
                sim_v,
                1.0,
                m_std.get(i).copied().unwrap_or(f64::NAN),
            )
            .with_note(format!("seed {}, {n_label}", cfg.seed)),
        );
    }
    let s = &mut out.summary;
    s.insert("unlearning".into(), json!(drop > cfg.unlearning_drop));
    s.insert("peak_alignment".into(), json!(pk));
    s.insert("peak_time".into(), json!(tpk));
    s.insert("final_alignment".into(), json!(fin));
    s.insert("final_second_layer".into(), json!(a.last()));
    s.insert("ode_vs_sgd_max_error".into(), json!(err_m));
    s.insert("ode_vs_sgd_max_error_a".into(), json!(err_a));
    s.insert(
        "unlearning_theory".into(),
        json!(drop_th > cfg.unlearning_drop),
    );
    s.insert("peak_alignment_theory".into(), json!(pk_th));
    s.insert("peak_time_theory".into(), json!(tpk_th));
    s.insert("final_alignment_theory".into(), json!(fin_th));
    s.insert("effective_a0".into(), json!(a0e));
    s.insert("noise_lambda".into(), json!(lambda));
    if let Some(mn) = &noisy {
        let e = m
            .iter()
            .zip(mn)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max);
        s.insert("ode_noise_vs_sgd_max_error".into(), json!(e));
        out.notes.push(format!(
            "SGD-noise-corrected ODE (λ = ηd/B = {lambda:.4}, unvalidated): max |m_SGD − m_noise| = {e:.4} vs {err_m:.4} for the population ODE."
        ));
    }
    if let Some(fw) = &finite_n {
        finite_width_summary(fw, &m, s);
    }
    let fps = fast_slow_summary(&lm, s);
    let crit_end =
        lm.unlearning_criterion(*m_th.last().unwrap_or(&0.0), *a_th.last().unwrap_or(&0.0));
    s.insert("criterion_S_at_end_theory".into(), json!(crit_end));
    if (drop > cfg.unlearning_drop) != (drop_th > cfg.unlearning_drop) {
        out.notes.push(format!(
            "Simulation and limit ODE disagree on unlearning (drops {drop:.3} vs {drop_th:.3})."
        ));
    }

    let curves = MainCurves {
        t,
        m,
        a,
        loss,
        m_th,
        a_th,
        l_th,
    };
    main_figures(cfg, &lm, a0e, &curves, finite_n.as_ref(), noisy, &fps, out)?;
    out.trajectory = traj;
    Ok(())
}

/// Summary keys of the finite-width references against the simulated alignment `m`.
fn finite_width_summary(
    fw: &FiniteWidth,
    m: &[f64],
    s: &mut serde_json::Map<String, serde_json::Value>,
) {
    let max_err = |th: &[f64]| {
        m.iter()
            .zip(th)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
    };
    s.insert(
        "ode_finite_n_vs_sgd_max_error".into(),
        json!(max_err(&fw.m)),
    );
    s.insert(
        "ode_equiangular_vs_sgd_max_error".into(),
        json!(max_err(&fw.equiangular.0)),
    );
    s.insert(
        "finite_n_reference".into(),
        json!(if fw.spread { "spread" } else { "equiangular" }),
    );
    s.insert(
        "finite_width_fixed_points".into(),
        json!(fw
            .fixed_points
            .iter()
            .map(|(m, a)| json!({"m": m, "a": a}))
            .collect::<Vec<_>>()),
    );
}

/// Summary keys of the fast–slow analysis (slow fixed points, the critical manifold at m = 1,
/// the scaling law); returns the slow fixed points.
fn fast_slow_summary(
    lm: &LimitModel,
    s: &mut serde_json::Map<String, serde_json::Value>,
) -> Vec<(f64, f64)> {
    let fps = lm.slow_fixed_points();
    s.insert(
        "slow_fixed_points".into(),
        json!(fps
            .iter()
            .map(|(m, a)| json!({"m": m, "a": a}))
            .collect::<Vec<_>>()),
    );
    s.insert("manifold_a_at_m1".into(), json!(lm.manifold_a(1.0)));
    if let Some(law) = lm.scaling_law() {
        s.insert("scaling_law".into(), json!(law));
    }
    fps
}

/// The main run's curves at the recording times: simulation and limit ODE.
struct MainCurves {
    t: Vec<f64>,
    m: Vec<f64>,
    a: Vec<f64>,
    loss: Vec<f64>,
    m_th: Vec<f64>,
    a_th: Vec<f64>,
    l_th: Vec<f64>,
}

/// The main run's figures: alignment, second layer, loss and the phase portrait.
#[allow(clippy::too_many_arguments)]
fn main_figures(
    cfg: &UnlearningConfig,
    lm: &LimitModel,
    a0e: f64,
    curves: &MainCurves,
    finite_n: Option<&FiniteWidth>,
    noisy: Option<Vec<f64>>,
    fps: &[(f64, f64)],
    out: &mut RunOutput,
) -> Result<()> {
    let MainCurves {
        t,
        m,
        a,
        loss,
        m_th,
        a_th,
        l_th,
    } = curves;
    let mut pm = LinePlot::new("Alignment m(t)", "t", "m")
        .with(Series::line(
            format!(
                "simulation N={}, d={}",
                cfg.simulation.width, cfg.simulation.dim
            ),
            t.clone(),
            m.clone(),
        ))
        .with(Series::dashed("limit ODE", t.clone(), m_th.clone()));
    if let Some(fw) = finite_n {
        let what = if fw.spread {
            "finite-N + spread ODE"
        } else {
            "finite-N ODE"
        };
        pm.series.push(Series::dashed(
            format!("{what} (N = {})", cfg.simulation.width),
            t.clone(),
            fw.m.clone(),
        ));
    }
    if let Some(mn) = noisy {
        pm.series.push(Series::dashed(
            "ODE + per-neuron noise term (refuted, see docs)",
            t.clone(),
            mn,
        ));
    }
    for (mq, _) in fps {
        pm.ref_lines.push(RefLine {
            label: "slow fixed point m_eq".into(),
            vertical: false,
            value: *mq,
        });
    }
    out.figures.push(pm.figure("alignment", "Alignment of the first layer with θ*: finite-width simulation (solid) vs the limit ODE (dashed)."));
    out.figures.push(
        LinePlot::new("Second layer a(t)", "t", "a")
            .with(Series::line("simulation", t.clone(), a.clone()))
            .with(Series::dashed("limit ODE", t.clone(), a_th.clone()))
            .figure(
                "second_layer",
                "Mean effective second-layer weight: simulation vs limit ODE.",
            ),
    );
    out.figures.push(
        LinePlot::new("Population loss", "t", "loss")
            .scales(Scale::Linear, Scale::Log)
            .with(Series::line(
                "simulation (exact population loss)",
                t.clone(),
                loss.clone(),
            ))
            .with(Series::dashed("limit L(m, a)", t.clone(), l_th.clone()))
            .figure(
                "loss",
                "Exact population loss of the finite network vs L(m,a) of the limit.",
            ),
    );
    out.figures
        .push(phase_portrait(cfg, lm, a0e, m, a, m_th, a_th)?);
    Ok(())
}

/// The finite-width references of the main run at the times `t` (mean-field only, else None).
fn finite_width_references(
    cfg: &UnlearningConfig,
    lm: &LimitModel,
    a0e: f64,
    lambda: f64,
    t: &[f64],
) -> Result<Option<FiniteWidth>> {
    if cfg.simulation.parametrization.gamma() != 1.0 {
        return Ok(None);
    }
    let eq = EquiangularModel::new(
        lm.student.clone(),
        lm.teacher.clone(),
        cfg.eps,
        cfg.simulation.width as f64,
    )?;
    let sol = eq.integrate(cfg.m0, 0.0, a0e, t, 1e-10)?;
    let m3: Vec<f64> = sol.iter().map(|x| x[0]).collect();
    let a3: Vec<f64> = sol.iter().map(|x| x[2]).collect();
    let spread = if cfg.simulation.first_layer == FirstLayer::Spherical {
        let sol = spread_ode(cfg, lm, a0e, lambda, t)?;
        Some((
            sol.iter().map(|x| x[0]).collect::<Vec<_>>(),
            sol.iter().map(|x| x[2]).collect::<Vec<_>>(),
        ))
    } else {
        None
    };
    let (mn, an) = spread.clone().unwrap_or_else(|| (m3.clone(), a3.clone()));
    Ok(Some(FiniteWidth {
        m: mn,
        a: an,
        equiangular: (m3, a3),
        spread: spread.is_some(),
        fixed_points: eq.simplex_fixed_points(),
    }))
}

pub(super) fn phase_portrait(
    cfg: &UnlearningConfig,
    lm: &LimitModel,
    a0e: f64,
    m: &[f64],
    a: &[f64],
    m_th: &[f64],
    a_th: &[f64],
) -> Result<crate::figure::Figure> {
    let a_top = a_th.iter().chain(a).fold(a0e, |x, y| x.max(*y)) * 2.0;
    let mut p = LinePlot::new("Phase portrait (m, a)", "alignment m", "second layer a");
    // Critical manifold from the roots of F(·, a) on a grid of a: attracting/repelling interior
    // points, split by the direction of the reduced slow flow.
    let mut groups: [(Vec<f64>, Vec<f64>); 4] = Default::default();
    for av in linspace(a_top / 400.0, a_top, 400) {
        for cp in lm.critical_points(av, 800) {
            if cp.m <= 0.0 {
                continue;
            }
            let g = match (cp.branch, cp.attracting) {
                (Branch::Boundary, true) => 3,
                (Branch::Boundary, false) => continue,
                (Branch::Interior, false) => 2,
                (Branch::Interior, true) => {
                    if lm.reduced_flow(cp.m).0 < 0.0 {
                        0
                    } else {
                        1
                    }
                }
            };
            groups[g].0.push(cp.m);
            groups[g].1.push(cp.a);
        }
    }
    let labels = [
        "M0 attracting, slow flow m↓ (unlearning)",
        "M0 attracting, slow flow m↑",
        "M0 repelling",
        "m = 1 branch (attracting)",
    ];
    for (g, l) in groups.into_iter().zip(labels) {
        if !g.0.is_empty() {
            p.series.push(Series::points(l, g.0, g.1));
        }
    }
    p.series.push(Series::dashed(
        "limit ODE trajectory",
        m_th.to_vec(),
        a_th.to_vec(),
    ));
    p.series.push(Series::line(
        "simulation trajectory",
        m.to_vec(),
        a.to_vec(),
    ));
    // Extra ODE trajectories from other initial conditions.
    let ts = linspace(0.0, cfg.t_max, 400);
    for (m0, a0) in [(0.05, 0.5 * a_top), (0.5, 0.05 * a_top), (0.9, 0.8 * a_top)] {
        let sol = lm.integrate(m0, a0, &ts, 1e-9)?;
        p.series.push(Series::dashed(
            format!("ODE from ({m0:.2}, {a0:.2})"),
            sol.iter().map(|x| x.0).collect(),
            sol.iter().map(|x| x.1).collect(),
        ));
    }
    Ok(p.figure(
        "phase_portrait",
        "Critical manifold F(m,a)=0 (points, computed as roots of the fast field; colour = attracting/repelling and direction of the reduced slow flow), limit-ODE and simulation trajectories.",
    ))
}
