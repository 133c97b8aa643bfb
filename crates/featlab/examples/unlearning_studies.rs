//! Longer numerical studies behind `docs/unlearning.md` (too slow for unit tests).
//!
//! ```text
//! cargo run --release -p featlab --example unlearning_studies -- saturation
//! cargo run --release -p featlab --example unlearning_studies -- noise
//! cargo run --release -p featlab --example unlearning_studies -- exponents
//! ```
//!
//! * `saturation`: finite-width stall of unlearning. Population GD and online SGD at several
//!   widths N (d = N) against the limit ODE (N = ∞) and the finite-N equiangular ODE; the
//!   predicted plateau `m_∞ = N^{−1/4}`.
//! * `noise`: the SGD-noise correction. Online SGD at several batch sizes (seeds as replicates)
//!   minus population GD at the same N, d, η and init, against the 2-D per-neuron and the 3-D
//!   common-mode noise ODEs.
//! * `exponents`: window-spread exponents of the reduced flow and the full ODE.

use faer::Par;
use featlab::rng::derive_seed;
use featlab::theory::unlearning::fit::windowed_exponent;
use featlab::theory::unlearning::simulator::{BatchMode, OrderParams, SimConfig, Simulator};
use featlab::theory::unlearning::{EquiangularModel, HermiteSeries, LimitModel};

fn series(c: &[f64]) -> HermiteSeries {
    HermiteSeries::new(c.to_vec(), "study").unwrap()
}

fn cfg(n: usize, d: usize, eps: f64, teacher: &[f64], batch: BatchMode) -> SimConfig {
    SimConfig {
        width: n,
        dim: d,
        student: series(&[0.0, 1.0, 0.5]),
        teacher: series(teacher),
        m0: 0.1,
        a0: 0.1,
        lr: 0.05,
        eps,
        gamma: 1.0,
        batch,
        spherical: true,
        orthogonal_init: false,
    }
}

/// Run to each time of `ts` (multiples of lr); returns the order parameters there.
fn run(c: SimConfig, seed: u64, ts: &[f64]) -> Vec<OrderParams> {
    let mut sim = Simulator::new(c, seed).unwrap();
    let mut out = Vec::new();
    for &t in ts {
        let target = (t / sim.cfg.lr).round() as u64;
        while sim.steps < target {
            sim.step(Par::Seq);
        }
        out.push(sim.order_params());
    }
    out
}

fn saturation(args: &[String]) {
    let t_max: f64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(400.0);
    let widths: Vec<usize> = args
        .get(1)
        .map(|s| s.split(',').map(|v| v.parse().unwrap()).collect())
        .unwrap_or_else(|| vec![64, 128, 256]);
    let sgd_max: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(128);
    let eps = 1.0;
    let teacher = [0.0, 1.0, 0.0];
    let ts: Vec<f64> = (1..=8).map(|i| t_max * i as f64 / 8.0).collect();
    let lm = LimitModel::new(series(&[0.0, 1.0, 0.5]), series(&teacher), eps);
    let inf = lm.integrate(0.1, 0.1, &ts, 1e-10).unwrap();
    println!(
        "# saturation: sigma = h1 + 0.5 h2, teacher h1, eps = 1, m0 = a0 = 0.1, eta = 0.05, d = N"
    );
    println!("# t: {ts:?}");
    println!(
        "# N=inf ODE m: {:?}",
        inf.iter()
            .map(|x| format!("{:.4}", x.0))
            .collect::<Vec<_>>()
    );
    for &n in &widths {
        let nf = n as f64;
        let eq =
            EquiangularModel::new(series(&[0.0, 1.0, 0.5]), series(&teacher), eps, nf).unwrap();
        let fp = eq.simplex_fixed_points();
        let simplex = eq.integrate(0.1, 0.0, 0.1, &ts, 1e-10).unwrap();
        let mut runs = vec![(
            "popGD",
            run(cfg(n, n, eps, &teacher, BatchMode::Population), 0, &ts),
        )];
        if n <= sgd_max {
            runs.push((
                "SGD B=8d",
                run(
                    cfg(n, n, eps, &teacher, BatchMode::Online { batch: 8 * n }),
                    0,
                    &ts,
                ),
            ));
        }
        let p0 = (1.0 - 0.01) / nf;
        let equi = eq.integrate(0.1, p0, 0.1, &ts, 1e-10).unwrap();
        println!(
            "\nN = {n}: plateau N^(-1/4) = {:.4}, fixed point {:?}",
            nf.powf(-0.25),
            fp
        );
        println!(
            "  finite-N ODE (simplex p=0)  m: {:?}",
            simplex
                .iter()
                .map(|x| format!("{:.4}", x[0]))
                .collect::<Vec<_>>()
        );
        println!(
            "  finite-N ODE (p0=(1-m0^2)/N) m: {:?}",
            equi.iter()
                .map(|x| format!("{:.4}", x[0]))
                .collect::<Vec<_>>()
        );
        for (label, ops) in &runs {
            println!(
                "  {label:9} m: {:?}",
                ops.iter()
                    .map(|o| format!("{:.4}", o.m))
                    .collect::<Vec<_>>()
            );
            println!(
                "  {label:9} a: {:?}  (ODE_N a: {:?})",
                ops.iter()
                    .map(|o| format!("{:.3}", o.a))
                    .collect::<Vec<_>>(),
                simplex
                    .iter()
                    .map(|x| format!("{:.3}", x[2]))
                    .collect::<Vec<_>>()
            );
            println!(
                "  {label:9} p = |common|^2: {:?}; mean q^2 (x N): {:?}",
                ops.iter()
                    .map(|o| format!("{:.1e}", o.common_sq))
                    .collect::<Vec<_>>(),
                ops.iter()
                    .map(|o| format!("{:.3}", o.pair_q2 * nf))
                    .collect::<Vec<_>>()
            );
            let e_n = ops
                .iter()
                .zip(&simplex)
                .map(|(o, s)| (o.m - s[0]).abs())
                .fold(0.0, f64::max);
            let e_inf = ops
                .iter()
                .zip(&inf)
                .map(|(o, s)| (o.m - s.0).abs())
                .fold(0.0, f64::max);
            let last = ops.len() - 1;
            println!(
                "  {label:9} max|m - m_ODE_N| = {e_n:.4}, max|m - m_ODE_inf| = {e_inf:.4}; at t = {t_max}: m - m_inf = {:.4} (predicted {:.4})",
                ops[last].m - inf[last].0,
                simplex[last][0] - inf[last].0
            );
        }
    }
}

fn noise(args: &[String]) {
    let seeds: u64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(8);
    let batches: Vec<usize> = args
        .get(1)
        .map(|s| s.split(',').map(|v| v.parse().unwrap()).collect())
        .unwrap_or_else(|| vec![16, 32, 64, 256]);
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(64);
    let teacher_c2: f64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(0.0);
    let (eps, t_max) = (0.2, 150.0);
    let teacher = [0.0, 1.0, teacher_c2];
    let ts: Vec<f64> = (1..=10).map(|i| t_max * i as f64 / 10.0).collect();
    let d = n;
    println!("# noise: sigma = h1 + 0.5 h2, teacher c*2 = {teacher_c2}, eps = {eps}, N = d = {n}, eta = 0.05, seeds = {seeds}");
    println!("# t: {ts:?}");
    // Population GD with the same init per seed (init stream depends on the seed only).
    let pops: Vec<Vec<OrderParams>> = (0..seeds)
        .map(|s| {
            run(
                cfg(n, d, eps, &teacher, BatchMode::Population),
                derive_seed(s, "noise"),
                &ts,
            )
        })
        .collect();
    let st = series(&[0.0, 1.0, 0.5]);
    let te = series(&teacher);
    let p0 = (1.0 - 0.01) / n as f64;
    let base3 = EquiangularModel::new(st.clone(), te.clone(), eps, n as f64).unwrap();
    let ode3_0 = base3.integrate(0.1, p0, 0.1, &ts, 1e-10).unwrap();
    let lm0 = LimitModel::new(st.clone(), te.clone(), eps);
    let ode2_0 = lm0.integrate(0.1, 0.1, &ts, 1e-10).unwrap();
    for &b in &batches {
        let lambda = 0.05 * d as f64 / b as f64;
        let mut p_sgd = vec![0.0; ts.len()];
        let mut dv = vec![0.0; ts.len()];
        let diffs: Vec<Vec<f64>> = (0..seeds)
            .map(|s| {
                let ops = run(
                    cfg(n, d, eps, &teacher, BatchMode::Online { batch: b }),
                    derive_seed(s, "noise"),
                    &ts,
                );
                for (i, (o, p)) in ops.iter().zip(&pops[s as usize]).enumerate() {
                    p_sgd[i] += o.common_sq / seeds as f64;
                    dv[i] += (o.pair_q2 - p.pair_q2) * n as f64 / seeds as f64;
                }
                ops.iter()
                    .zip(&pops[s as usize])
                    .map(|(o, p)| o.m - p.m)
                    .collect()
            })
            .collect();
        let k = seeds as f64;
        let mean: Vec<f64> = (0..ts.len())
            .map(|i| diffs.iter().map(|d| d[i]).sum::<f64>() / k)
            .collect();
        let se: Vec<f64> = (0..ts.len())
            .map(|i| {
                let v = diffs.iter().map(|d| (d[i] - mean[i]).powi(2)).sum::<f64>() / (k - 1.0);
                (v / k).sqrt()
            })
            .collect();
        let lm = LimitModel::new(st.clone(), te.clone(), eps)
            .with_noise(lambda, 12)
            .unwrap();
        let ode2 = lm.integrate(0.1, 0.1, &ts, 1e-9).unwrap();
        let pred2: Vec<f64> = ode2.iter().zip(&ode2_0).map(|(x, y)| x.0 - y.0).collect();
        let ode3 = base3
            .clone()
            .with_noise(lambda, true)
            .integrate(0.1, p0, 0.1, &ts, 1e-9)
            .unwrap();
        let pred3: Vec<f64> = ode3.iter().zip(&ode3_0).map(|(x, y)| x[0] - y[0]).collect();
        let f = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:+.4}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        println!("\nB = {b} (lambda = {lambda:.4})");
        println!("  SGD - popGD mean  : {}", f(&mean));
        println!("  standard error    : {}", f(&se));
        println!("  2-D per-neuron ODE: {}", f(&pred2));
        println!("  3-D common-mode   : {}", f(&pred3));
        println!(
            "  SGD p(t) measured : {}",
            p_sgd
                .iter()
                .map(|x| format!("{x:.4}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        println!(
            "  SGD-popGD N<q^2>  : {}",
            dv.iter()
                .map(|x| format!("{x:.4}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        println!(
            "  3-D p(t)          : {}",
            ode3.iter()
                .map(|x| format!("{:.4}", x[1]))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
}

fn exponents() {
    let lm = LimitModel::new(series(&[0.0, 1.0, 0.5]), series(&[0.0, 1.0, 0.0]), 1.0);
    let law = lm.scaling_law().unwrap();
    let om = [law.exponent, 2.0 * law.exponent];
    let tr: Vec<f64> = (0..=120)
        .map(|i| 1e4 * 1e5f64.powf(i as f64 / 120.0))
        .collect();
    let red = lm
        .integrate_reduced(0.5, &[&[0.0][..], &tr[..]].concat(), 1e-11)
        .unwrap();
    let (rm, ra): (Vec<f64>, Vec<f64>) = red[1..].iter().copied().unzip();
    for (lo, hi) in [(1e4, 1e9), (1e6, 1e9)] {
        for (name, y) in [("m", &rm), ("a", &ra)] {
            let w = windowed_exponent(&tr, y, lo, hi, 10.0, 7, &om).unwrap();
            println!(
                "reduced [{lo:e},{hi:e}] {name}: {:.7} ± {:.1e}  windows {:?}",
                w.exponent,
                w.spread,
                w.windows.iter().map(|x| x.2).collect::<Vec<_>>()
            );
        }
    }
    let tf: Vec<f64> = (0..=120)
        .map(|i| 1e1 * 1e4f64.powf(i as f64 / 120.0))
        .collect();
    let full = lm
        .integrate(0.1, 0.1, &[&[0.0][..], &tf[..]].concat(), 1e-10)
        .unwrap();
    let (fm, fa): (Vec<f64>, Vec<f64>) = full[1..].iter().copied().unzip();
    for (lo, hi) in [(1e2, 1e5), (1e3, 1e5)] {
        for (name, y) in [("m", &fm), ("a", &fa)] {
            let w = windowed_exponent(&tf, y, lo, hi, 10.0, 5, &om).unwrap();
            println!(
                "full ODE [{lo:e},{hi:e}] {name}: {:.7} ± {:.1e}  windows {:?}",
                w.exponent,
                w.spread,
                w.windows.iter().map(|x| x.2).collect::<Vec<_>>()
            );
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("saturation") => saturation(&args[1..]),
        Some("noise") => noise(&args[1..]),
        Some("exponents") => exponents(),
        _ => eprintln!("usage: unlearning_studies saturation [t_max widths sgd_max] | noise [seeds batches N c2] | exponents"),
    }
}
