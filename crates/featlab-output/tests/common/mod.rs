//! Shared sample figures for the integration tests.
#![allow(dead_code)]

use featlab::figure::{Figure, FigureKind, Heatmap, LinePlot, RefLine, Scale, Series};

/// Staircase-like loss curve: log-log, noisy empirical loss, dashed theory step, jump times.
pub fn staircase_figure(n: usize) -> Figure {
    let jumps = [30.0, 300.0, 3000.0];
    let levels = [1.0, 0.3, 0.05, 1e-3];
    let t: Vec<f64> = (0..n)
        .map(|i| 1.0 * (1e5f64).powf(i as f64 / (n - 1) as f64))
        .collect();
    let smooth = |t: f64| {
        let mut l = levels[3];
        for k in (0..3).rev() {
            let w = 1.0 / (1.0 + (8.0 * (t.ln() - (jumps[k] * 1.3f64).ln())).exp());
            l = l + (levels[k] - l) * w;
        }
        l
    };
    let loss: Vec<f64> = t
        .iter()
        .enumerate()
        .map(|(i, t)| smooth(*t) * (1.0 + 0.08 * ((i as f64) * 1.7).sin()))
        .collect();
    let mut tx = vec![1.0];
    tx.extend(jumps);
    let mut p = LinePlot::new("Saddle-to-saddle staircase", "time t", "loss")
        .scales(Scale::Log, Scale::Log)
        .with(Series::line("gradient flow", t.clone(), loss))
        .with(Series::step("AGF theory", tx, levels.to_vec()))
        .with(Series::dashed(
            "power-law guide",
            vec![1.0, 1e5],
            vec![2.0, 2e-4],
        ));
    for (k, j) in jumps.iter().enumerate() {
        p.ref_lines.push(RefLine {
            label: format!("t*{} predicted", k + 1),
            vertical: true,
            value: *j,
        });
    }
    p.ref_lines.push(RefLine {
        label: "noise floor".into(),
        vertical: false,
        value: 1e-3,
    });
    p.figure(
        "staircase",
        "Loss of a two-layer net under gradient flow vs the AGF staircase.",
    )
}

/// Phase diagram with a theoretical boundary drawn on top (partly outside the grid).
pub fn heatmap_figure() -> Figure {
    let x: Vec<f64> = (0..40)
        .map(|j| 10f64.powf(-2.0 + 3.0 * j as f64 / 39.0))
        .collect();
    let y: Vec<f64> = (0..30).map(|i| i as f64 / 29.0 * 2.0).collect();
    let z: Vec<Vec<f64>> = y
        .iter()
        .enumerate()
        .map(|(i, yy)| {
            x.iter()
                .enumerate()
                .map(|(j, xx)| {
                    if i == 3 && j == 5 {
                        f64::NAN
                    } else {
                        1.0 / (1.0 + (4.0 * (yy - xx.log10() - 1.0)).exp())
                    }
                })
                .collect()
        })
        .collect();
    let bx: Vec<f64> = (0..50)
        .map(|k| 10f64.powf(-2.5 + 4.0 * k as f64 / 49.0))
        .collect();
    let by: Vec<f64> = bx.iter().map(|v| v.log10() + 1.0).collect();
    Figure {
        name: "phase".into(),
        caption: "Fraction of runs that learn the feature; the line is the predicted boundary."
            .into(),
        kind: FigureKind::Heatmap(Heatmap {
            title: "Phase diagram".into(),
            x_label: "learning rate η".into(),
            y_label: "init scale α".into(),
            z_label: "P(feature learned)".into(),
            x,
            y,
            z,
            x_scale: Scale::Log,
            y_scale: Scale::Linear,
            overlays: vec![
                Series::dashed("theory boundary", bx, by),
                Series::points("probes", vec![0.1, 1.0], vec![0.5, 1.5]),
            ],
        }),
    }
}
