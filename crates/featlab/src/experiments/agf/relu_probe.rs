//! Diagnostics of the ReLU preset's AGF-vs-GF disagreement (ignored; run with
//! `cargo test --release -p featlab relu_probe -- --ignored --nocapture`).

use super::two_layer::{build, AgfProblem, Built, Net};
use crate::linalg::{norm2, sym_eig};
use crate::model::{Loss, Model, NeuronSum};
use crate::rng::{normal_vec, stream};
use crate::theory::agf::cost::GradientFlowCost;
use crate::theory::agf::engine::{run_agf, AgfOptions};
use crate::train::RunContext;
use faer::Mat;

fn relu(n: usize, d: usize, width: usize, strengths: Vec<f64>, seed: u64) -> Built {
    build(
        &AgfProblem::Relu {
            n,
            d,
            width,
            strengths,
            alpha: 1e-12,
        },
        seed,
    )
    .unwrap()
}

fn neuron_report(b: &Built, params: &[f64]) -> String {
    let Net::Two(m) = &b.net else { unreachable!() };
    let th = b.teacher.as_ref().unwrap();
    let mut s = String::new();
    for i in 0..m.width {
        let idx = m.neuron_params(i);
        let w: Vec<f64> = idx[..m.d].iter().map(|&j| params[j]).collect();
        let a = params[idx[m.d]];
        let nw = norm2(&w);
        let nrm = (nw * nw + a * a).sqrt();
        let cos: Vec<String> = (0..th.ncols())
            .map(|k| {
                format!(
                    "{:+.4}",
                    (0..m.d).map(|q| th[(q, k)] * w[q]).sum::<f64>() / nw.max(1e-300)
                )
            })
            .collect();
        s += &format!("  n{i}: |θ|={nrm:.3e} a={a:+.3e} |w|={nw:.3e} cos(w,θ_k)={cos:?}\n");
    }
    s
}

fn grad(model: &dyn Model, b: &Built, p: &[f64], g: &mut [f64]) -> f64 {
    let mut ws = model.workspace(b.data.n());
    model.loss_and_grad(
        p,
        b.data.x.as_ref(),
        b.data.y.as_ref(),
        Loss::Mse,
        g,
        &mut ws,
    )
}

/// Full-batch GD at `lr` for `steps` steps, printing every `every` steps.
fn gd(model: &dyn Model, b: &Built, p: &mut [f64], lr: f64, steps: u64, every: u64, t0: f64) {
    let mut g = vec![0.0; p.len()];
    for k in 0..=steps {
        let l = grad(model, b, p, &mut g);
        if every > 0 && k % every == 0 {
            println!(
                "t = {:8.2}: loss = {l:.6e} |∇L| = {:.3e}",
                t0 + k as f64 * lr,
                norm2(&g)
            );
        }
        if k < steps {
            for (x, gi) in p.iter_mut().zip(&g) {
                *x -= lr * gi;
            }
        }
    }
}

fn hessian_eigs(model: &dyn Model, b: &Built, p: &[f64], h: f64) -> Vec<f64> {
    let n = p.len();
    let mut hm = Mat::zeros(n, n);
    let mut gp = vec![0.0; n];
    let mut gm = vec![0.0; n];
    let mut q = p.to_vec();
    for j in 0..n {
        q[j] = p[j] + h;
        grad(model, b, &q, &mut gp);
        q[j] = p[j] - h;
        grad(model, b, &q, &mut gm);
        q[j] = p[j];
        for i in 0..n {
            hm[(i, j)] = (gp[i] - gm[i]) / (2.0 * h);
        }
    }
    let hs = Mat::from_fn(n, n, |i, j| 0.5 * (hm[(i, j)] + hm[(j, i)]));
    let (_, mut l) = sym_eig(hs.as_ref()).unwrap();
    l.sort_by(f64::total_cmp);
    l
}

#[test]
#[ignore]
fn relu_probe_gf_stall() {
    let b = relu(200, 4, 6, vec![2.0, 1.0], 0);
    let Net::Two(m) = &b.net else { unreachable!() };
    for &alpha in &[1e-12, 1e-6, 1e-4] {
        println!("==== α = {alpha:e}");
        let init: Vec<f64> = b.base.iter().map(|v| v * alpha).collect();
        println!("init:\n{}", neuron_report(&b, &init));
        let mut p = init.clone();
        let lr = 1e-3;
        let mut t: f64 = 0.0;
        for &t_end in &[
            12.0, 20.0, 23.0, 24.5, 26.0, 30.0, 45.0, 60.0, 300.0, 1000.0,
        ] {
            let steps = ((t_end - t) / lr).round() as u64;
            gd(m, &b, &mut p, lr, steps, 0, t);
            t = t_end;
            let mut g = vec![0.0; p.len()];
            let l = grad(m, &b, &p, &mut g);
            println!(
                "t = {t}: loss = {l:.6e}, |∇L| = {:.3e}\n{}",
                norm2(&g),
                neuron_report(&b, &p)
            );
        }
        let eigs = hessian_eigs(m, &b, &p, 1e-6);
        println!("Hessian eigenvalues at t = {t}: {eigs:?}");
        // tiny perturbations
        for (k, &eps) in [1e-8, 1e-4, 1e-2].iter().enumerate() {
            let z = normal_vec(&mut stream(k as u64, "perturb"), p.len(), eps);
            let mut q: Vec<f64> = p.iter().zip(&z).map(|(a, b)| a + b).collect();
            gd(m, &b, &mut q, lr, 1_000_000, 0, 0.0);
            let mut g = vec![0.0; q.len()];
            let l = grad(m, &b, &q, &mut g);
            println!(
                "perturbed by {eps:e}, +1000 time units: loss = {l:.6e} |∇L| = {:.3e}\n{}",
                norm2(&g),
                neuron_report(&b, &q)
            );
        }
    }
}

#[test]
#[ignore]
fn relu_probe_agf() {
    let b = relu(200, 4, 6, vec![2.0, 1.0], 0);
    let Net::Two(m) = &b.net else { unreachable!() };
    let init: Vec<f64> = b.base.iter().map(|v| v * 1e-12).collect();
    let opts = AgfOptions {
        fixed_dt: Some(1e-3),
        t_max: 300.0,
        ..AgfOptions::default()
    };
    let mut cost = GradientFlowCost {
        fixed_dt: Some(1e-3),
        gtol: 1e-6,
        t_max: 2000.0,
        ..GradientFlowCost::default()
    };
    let res = run_agf(m, &b.data, &init, &mut cost, &opts, &RunContext::default()).unwrap();
    println!("thresholds {:?}", res.thresholds);
    for r in &res.rounds {
        println!(
            "round t = {:.4} loss = {:.6e} activated {:?} near {:?} deact {:?} active {:?} steps {} cost {}\n{}",
            r.t,
            r.loss,
            r.activated,
            r.near_ties,
            r.deactivated,
            r.active,
            r.utility_steps,
            r.cost_work,
            neuron_report(&b, &r.params)
        );
    }
    // dormant norms at each jump from the trace
    for (t, nr) in res.trace.t.iter().zip(&res.trace.norms) {
        if [12.0f64, 20.0, 24.0].iter().any(|x| (t - x).abs() < 5e-4) {
            println!("AGF trace t = {t}: norms {nr:?}");
        }
    }
    println!("stop {:?}", res.stop);
}

#[test]
#[ignore]
fn relu_probe_carry() {
    for strengths in [vec![2.0, 1.0], vec![2.0, -1.0]] {
        for &alpha in &[1e-12, 1e-6, 1e-4] {
            for carry in [false, true] {
                let b = relu(200, 4, 6, strengths.clone(), 0);
                let Net::Two(m) = &b.net else { unreachable!() };
                let init: Vec<f64> = b.base.iter().map(|v| v * alpha).collect();
                let opts = AgfOptions {
                    fixed_dt: Some(5e-2),
                    tableau: "bosh3".into(),
                    t_max: 300.0,
                    carry_dormant: carry,
                    ..AgfOptions::default()
                };
                let mut cost = GradientFlowCost {
                    fixed_dt: Some(1e-2),
                    gtol: 1e-6,
                    t_max: 2000.0,
                    ..GradientFlowCost::default()
                };
                let res =
                    run_agf(m, &b.data, &init, &mut cost, &opts, &RunContext::default()).unwrap();
                println!(
                    "strengths {strengths:?} α = {alpha:e} carry = {carry}: stop {:?}",
                    res.stop
                );
                for r in &res.rounds {
                    println!(
                        "  t = {:.4} loss = {:.6e} activated {:?} active {:?}",
                        r.t, r.loss, r.activated, r.active
                    );
                }
                if let Some(r) = res.rounds.last() {
                    print!("{}", neuron_report(&b, &r.params));
                }
            }
        }
    }
}
