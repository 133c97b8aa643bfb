//! `[exponents]`: window-spread exponents of the reduced slow flow and of the full limit ODE
//! over several fit ranges (docs/unlearning.md, `unlearning-scaling`: the wider the range, the
//! wider the spread), against the derived law `m ~ t^{−β}`, `a ~ t^{β}`.

use super::scaling::log_grid;
use super::*;

/// One fit: `(range, which, exponent, window spread)`.
type RangeFit = ([f64; 2], &'static str, f64, f64);

/// Window-spread fits of `m` (decay, sign flipped) and `a` (growth) on each range of `ranges`;
/// `(range, which, exponent, spread)`.
fn fits(
    t: &[f64],
    (m, a): (&[f64], &[f64]),
    ranges: &[[f64; 2]],
    windows: usize,
    ratio: f64,
    omegas: &[f64],
) -> Result<Vec<RangeFit>> {
    let mut rows = Vec::new();
    for r in ranges {
        for (which, y, sign) in [("m decay", m, -1.0), ("a growth", a, 1.0)] {
            let w = windowed_exponent(t, y, r[0], r[1], ratio, windows, omegas)?;
            rows.push((*r, which, sign * w.exponent, w.spread));
        }
    }
    Ok(rows)
}

/// Runs `[exponents]`: table `exponents.csv`, summary `exponents`, one agreement row per flow,
/// range and order parameter (the derived exponent inside the window-spread interval).
pub(super) fn exponents(
    cfg: &UnlearningConfig,
    ec: &ExponentsConfig,
    out: &mut RunOutput,
) -> Result<()> {
    let lm = cfg.limit(&cfg.teacher)?;
    let Some(law) = lm.scaling_law() else {
        out.notes.push("[exponents]: no late-time decay law (the slow flow anchors the alignment), nothing to fit.".into());
        return Ok(());
    };
    let om = [law.exponent, 2.0 * law.exponent];
    let tr = log_grid(ec.reduced_grid[0], ec.reduced_grid[1], 120);
    let m_start = 0.5_f64.min(
        lm.slow_fixed_points()
            .first()
            .map(|f| f.0 * 0.9)
            .unwrap_or(0.5),
    );
    let red = lm.integrate_reduced(m_start, &[&[0.0][..], &tr[..]].concat(), 1e-11)?;
    let (rm, ra): (Vec<f64>, Vec<f64>) = red[1..].iter().copied().unzip();
    let tf = log_grid(ec.ode_grid[0], ec.ode_grid[1], 120);
    let full = lm.integrate(cfg.m0, cfg.a0, &[&[0.0][..], &tf[..]].concat(), 1e-10)?;
    let (fm, fa): (Vec<f64>, Vec<f64>) = full[1..].iter().copied().unzip();
    let mut rows = Vec::new();
    for (flow, code, r) in [
        (
            "reduced slow flow",
            0.0,
            fits(
                &tr,
                (&rm, &ra),
                &ec.reduced_ranges,
                ec.reduced_windows,
                ec.window_ratio,
                &om,
            )?,
        ),
        (
            "full limit ODE",
            1.0,
            fits(
                &tf,
                (&fm, &fa),
                &ec.ode_ranges,
                ec.ode_windows,
                ec.window_ratio,
                &om,
            )?,
        ),
    ] {
        for (range, which, est, spread) in r {
            rows.push((flow, code, range, which, est, spread));
        }
    }
    let names = [
        "flow(0=reduced,1=ode)",
        "t_lo",
        "t_hi",
        "order_parameter(0=m,1=a)",
        "exponent",
        "window_spread",
        "theory",
    ];
    let mut cols: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let mut summary = Vec::new();
    for (flow, code, range, which, est, spread) in rows {
        let is_a = which.starts_with('a');
        for (c, v) in cols.iter_mut().zip([
            code,
            range[0],
            range[1],
            f64::from(is_a as u8),
            est,
            spread,
            law.exponent,
        ]) {
            c.push(v);
        }
        summary.push(json!({"flow": flow, "range": range, "quantity": which, "exponent": est, "window_spread": spread, "theory": law.exponent}));
        out.agreement.push(
            AgreementRow::relative_to(
                format!("{which} exponent, {flow} on [{:e}, {:e}] vs derived 1/(q+1) (tolerance: window spread)", range[0], range[1]),
                law.exponent,
                est,
                1.0,
                spread,
            )
            .with_note(format!("{} windows of ratio {}", if code == 0.0 { ec.reduced_windows } else { ec.ode_windows }, ec.window_ratio)),
        );
    }
    out.summary.insert("exponents".into(), json!(summary));
    out.tables.push(CsvTable {
        name: "exponents".into(),
        columns: names.iter().map(|s| s.to_string()).collect(),
        values: cols,
    });
    Ok(())
}
