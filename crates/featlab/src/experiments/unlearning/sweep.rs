//! `[sweep]`: a parameter (c*_2 or a0) swept in the ODE and the simulator, and the (c*_2, a0)
//! boundary of unlearning in the ODE.

use super::*;

pub(super) fn sweep(
    cfg: &UnlearningConfig,
    sw: &SweepConfig,
    ctx: &RunContext<'_>,
    out: &mut RunOutput,
) -> Result<()> {
    let pname = match sw.parameter {
        SweepParameter::TeacherC2 => "c*_2",
        SweepParameter::A0 => "a0",
    };
    let t = linspace(0.0, cfg.t_max, cfg.record_points);
    let mut cols: Vec<Vec<f64>> = vec![Vec::new(); 10];
    let mut pm = LinePlot::new(format!("Alignment across {pname}"), "t", "m");
    let mut agree = 0;
    for (i, &v) in sw.values.iter().enumerate() {
        let mut teacher = cfg.teacher.clone();
        let mut a0 = cfg.a0;
        match sw.parameter {
            SweepParameter::TeacherC2 => {
                if teacher.len() < 3 {
                    teacher.resize(3, 0.0);
                }
                teacher[2] = v;
            }
            SweepParameter::A0 => a0 = v,
        }
        let lm = cfg.limit(&teacher)?;
        let ode = lm.integrate(cfg.m0, cfg.a0_eff(a0), &t, 1e-10)?;
        let m_th: Vec<f64> = ode.iter().map(|p| p.0).collect();
        let (pk_th, _, fin_th, drop_th) = peak_final(&t, &m_th);
        pm.series
            .push(Series::dashed(format!("ODE {pname}={v}"), t.clone(), m_th));
        let (pk, fin, drop) = if sw.simulate {
            let sc = cfg.sim_config(
                cfg.simulation.width,
                cfg.simulation.dim,
                cfg.simulation.batch,
                &teacher,
                a0,
            )?;
            let sim = run_sim(
                sc,
                crate::rng::derive_seed(cfg.seed, &format!("sweep-{i}")),
                cfg.t_max,
                cfg.record_points,
                ctx,
                &format!("sweep {pname}={v}"),
            )?;
            let m: Vec<f64> = sim.ops.iter().map(|o| o.m).collect();
            let r = peak_final(&sim.t, &m);
            pm.series
                .push(Series::line(format!("sim {pname}={v}"), sim.t, m));
            (r.0, r.2, r.3)
        } else {
            (f64::NAN, f64::NAN, f64::NAN)
        };
        let fp = lm.slow_fixed_points();
        let (meq, aeq) = fp.first().copied().unwrap_or((f64::NAN, f64::NAN));
        let u_th = drop_th > cfg.unlearning_drop;
        let u_sim = drop > cfg.unlearning_drop;
        if !sw.simulate || u_th == u_sim {
            agree += 1;
        }
        for (c, x) in cols.iter_mut().zip([
            v,
            pk_th,
            fin_th,
            drop_th,
            f64::from(u_th as u8),
            pk,
            fin,
            drop,
            if sw.simulate {
                f64::from(u_sim as u8)
            } else {
                f64::NAN
            },
            meq,
        ]) {
            c.push(x);
        }
        out.summary.insert(format!("sweep_{i}"), json!({pname: v, "ode_peak": pk_th, "ode_final": fin_th, "ode_unlearning": u_th, "sim_peak": pk, "sim_final": fin, "sim_unlearning": if sw.simulate { json!(u_sim) } else { json!(null) }, "slow_fixed_point_m": meq, "slow_fixed_point_a": aeq}));
    }
    out.summary.insert("sweep_parameter".into(), json!(pname));
    if sw.simulate {
        out.agreement.push(
            AgreementRow::relative_to(
                format!(
                    "sweep of {pname}: values where simulation and limit ODE agree on unlearning (drop > {})",
                    cfg.unlearning_drop
                ),
                sw.values.len() as f64,
                agree as f64,
                1.0,
                0.0,
            )
            .with_note("counts"),
        );
    }
    out.summary.insert(
        "sweep_ode_sim_agreement".into(),
        json!(format!("{agree}/{}", sw.values.len())),
    );
    let names = [
        "value",
        "ode_peak",
        "ode_final",
        "ode_drop",
        "ode_unlearning",
        "sim_peak",
        "sim_final",
        "sim_drop",
        "sim_unlearning",
        "slow_fixed_point_m",
    ];
    let vals = cols[0].clone();
    let mut pd = LinePlot::new(
        format!("Alignment drop max m − m(T) vs {pname}"),
        pname,
        "drop",
    )
    .with(Series::dashed("limit ODE", vals.clone(), cols[3].clone()))
    .with(Series::points("simulation", vals.clone(), cols[7].clone()));
    pd.ref_lines.push(RefLine {
        label: "unlearning threshold".into(),
        vertical: false,
        value: cfg.unlearning_drop,
    });
    out.tables.push(CsvTable {
        name: "sweep".into(),
        columns: names.iter().map(|s| s.to_string()).collect(),
        values: cols,
    });
    out.figures.push(pm.figure(
        "sweep_alignment",
        format!("m(t) for each {pname}: limit ODE (dashed) and finite-width simulation (solid)."),
    ));
    out.figures.push(pd.figure("sweep_drop", "Alignment drop (peak minus final) against the swept parameter; above the threshold counts as unlearning."));
    if !sw.boundary_c2.is_empty() {
        boundary(cfg, sw, out)?;
    }
    Ok(())
}

pub(super) fn boundary(
    cfg: &UnlearningConfig,
    sw: &SweepConfig,
    out: &mut RunOutput,
) -> Result<()> {
    let t = linspace(0.0, cfg.t_max, cfg.record_points);
    let drop_at = |c2: f64, a0: f64| -> Result<f64> {
        let mut teacher = cfg.teacher.clone();
        teacher.resize(teacher.len().max(3), 0.0);
        teacher[2] = c2;
        let ode = cfg
            .limit(&teacher)?
            .integrate(cfg.m0, cfg.a0_eff(a0), &t, 1e-8)?;
        Ok(peak_final(&t, &ode.iter().map(|p| p.0).collect::<Vec<_>>()).3)
    };
    let mut z = Vec::new();
    for &a0 in &sw.boundary_a0 {
        z.push(
            sw.boundary_c2
                .iter()
                .map(|&c2| drop_at(c2, a0))
                .collect::<Result<Vec<f64>>>()?,
        );
    }
    // Critical c*_2(a0): bisection of drop = threshold between the grid ends (ODE).
    let (lo, hi) = (sw.boundary_c2[0], *sw.boundary_c2.last().unwrap_or(&0.0));
    let mut crit = Vec::new();
    for &a0 in &sw.boundary_a0 {
        let (mut l, mut h) = (lo, hi);
        let (dl, dh) = (
            drop_at(l, a0)? - cfg.unlearning_drop,
            drop_at(h, a0)? - cfg.unlearning_drop,
        );
        if dl * dh > 0.0 {
            crit.push(f64::NAN);
            continue;
        }
        for _ in 0..30 {
            let mid = 0.5 * (l + h);
            if (drop_at(mid, a0)? - cfg.unlearning_drop) * dl > 0.0 {
                l = mid;
            } else {
                h = mid;
            }
        }
        crit.push(0.5 * (l + h));
    }
    // Theory: slow fixed point a_eq(c*2) for degree-2 (general: the fixed point on A(m)), and m_eq = 1.
    let (c1, c2s, t1) = (
        cfg.student[1],
        cfg.student.get(2).copied().unwrap_or(0.0),
        cfg.teacher.get(1).copied().unwrap_or(0.0),
    );
    let (cx, cy): (Vec<f64>, Vec<f64>) = linspace(lo, hi, 200)
        .into_iter()
        .filter_map(|c| {
            let mut teacher = cfg.teacher.clone();
            teacher.resize(teacher.len().max(3), 0.0);
            teacher[2] = c;
            let lm = cfg.limit(&teacher).ok()?;
            lm.slow_fixed_points().first().map(|fp| (c, fp.1))
        })
        .filter(|(_, a)| *a <= *sw.boundary_a0.last().unwrap_or(&0.0) * 1.05)
        .unzip();
    let a0s = sw.boundary_a0.clone();
    let heat = Heatmap {
        title: "Alignment drop of the limit ODE over (c*_2, a0)".into(),
        x_label: "teacher c*_2".into(),
        y_label: "a0".into(),
        z_label: "max m − m(T)".into(),
        x: sw.boundary_c2.clone(),
        y: a0s.clone(),
        z: z.clone(),
        x_scale: Scale::Linear,
        y_scale: Scale::Linear,
        overlays: vec![
            Series::line("ODE boundary (drop = threshold)", crit.clone(), a0s.clone()),
            Series::dashed("slow fixed point a_eq(c*_2)", cx, cy),
            Series::dashed(
                "m_eq = 1: c*_2 = c_2 c*_1 / c_1",
                vec![c2s * t1 / c1; 2],
                vec![a0s[0], *a0s.last().unwrap_or(&0.0)],
            ),
        ],
    };
    out.figures.push(crate::figure::Figure {
        name: "boundary".into(),
        caption: "Unlearning map of the limit ODE: alignment drop over teacher c*_2 and initial second-layer scale a0, the traced boundary, and the fast–slow prediction (a0 above a_eq, or c*_2 above c_2c*_1/c_1, means no unlearning).".into(),
        kind: crate::figure::FigureKind::Heatmap(heat),
    });
    out.tables.push(CsvTable {
        name: "boundary".into(),
        columns: vec!["a0".into(), "critical_c2_ode".into()],
        values: vec![a0s, crit.clone()],
    });
    out.summary
        .insert("boundary_critical_c2".into(), json!(crit));
    Ok(())
}
