//! The numerical studies behind `docs/unlearning.md` that are not presets yet (the width
//! series of the pair-overlap spread, the simplex start and the one-step spread check). The
//! saturation, noise and exponent studies are presets: `featlab run unlearning-saturation`,
//! `unlearning-noise`, `unlearning-exponents`.
//!
//! ```text
//! cargo run --release -p featlab --example unlearning_studies -- sgdruns 256 4 /tmp/ul sgd,pop
//! cargo run --release -p featlab --example unlearning_studies -- odes 256 /tmp/ul
//! cargo run --release -p featlab --example unlearning_studies -- sgdruns 256 2 /tmp/ul sgd - quadratic:8
//! cargo run --release -p featlab --example unlearning_studies -- odes 256 /tmp/ul quadratic:8
//! cargo run --release -p featlab --example unlearning_studies -- simplexrun 128 2 100 /tmp/ul
//! cargo run --release -p featlab --example unlearning_studies -- dcheck 64 0.357 2.63 0.02 1000 512
//! ```
//!
//! * `sgdruns N seeds dir [modes] [lr|-] [rule] [first]`: the `unlearning-scaling` setting at
//!   width N (d = N, B = 8N, or the batch rule `linear:c` B = cN / `quadratic:c` B = N²/c),
//!   online SGD and population GD per seed (seeds `first..first+seeds`), one CSV per run.
//! * `odes N dir [rule]`: the ODE predictions for `sgdruns` (limit, 3-D equiangular, 4-D spread model
//!   with the linear closure, spread model with the Marchenko–Pastur transient; λ = 0 and
//!   λ = ηd/B).
//! * `simplexrun N seeds t dir`: the `sgdruns` setting (online SGD, B = 8N) started from the
//!   regular simplex of orthogonal parts instead of random ones (no Marchenko–Pastur
//!   transient); CSV `sgd_simplex_N{N}_s{i}.csv`, to compare with the spread ODE's simplex start
//!   (`odes`, columns `*_4sgd_simplex`).
//! * `dcheck N m a delta reps B [t]`: pair-overlap spread at N = d from a perturbed simplex:
//!   population-GD relaxation, the one-step SGD feed against the derived one, optionally an
//!   SGD run at fixed a.

use faer::Par;
use featlab::experiments::unlearning::simulator::{BatchMode, OrderParams, SimConfig, Simulator};
use featlab::rng::derive_seed;
use featlab::theory::unlearning::{EquiangularModel, HermiteSeries, LimitModel, SpreadModel};

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

/// `sgdruns`: the `unlearning-scaling` setting (σ = h1 + 0.5h2, σ* = h1, ε = 1, m0 = a0 = 0.1,
/// η = 0.05, d = N, B = 8N, t ≤ 400, records every t = 2) at width N for the preset's seeds
/// (0, then `derive_seed(0, "scaling-seed-i")`), online SGD and population GD with the same
/// init; one CSV per run (`t,m,a,common_sq,pair_q2,m_std,a_std,loss`) in `dir`.
fn sgdruns(args: &[String]) {
    let n: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(64);
    let seeds: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(4);
    let dir = args
        .get(2)
        .cloned()
        .unwrap_or_else(|| "/work/tmp/noise".into());
    let modes: Vec<String> = args
        .get(3)
        .map(|s| s.split(',').map(String::from).collect())
        .unwrap_or_else(|| vec!["sgd".into(), "pop".into()]);
    let lr_arg: Option<f64> = args.get(4).and_then(|s| s.parse().ok());
    let rule = batch_rule(args.get(5));
    let first: usize = args.get(6).and_then(|s| s.parse().ok()).unwrap_or(0);
    std::fs::create_dir_all(&dir).unwrap();
    let ts: Vec<f64> = (0..=200).map(|i| 2.0 * i as f64).collect();
    for i in first..first + seeds {
        let seed = if i == 0 {
            0
        } else {
            derive_seed(0, &format!("scaling-seed-{i}"))
        };
        for mode in &modes {
            let batch = match mode.as_str() {
                "sgd" => BatchMode::Online {
                    batch: rule.batch(n),
                },
                _ => BatchMode::Population,
            };
            let mut c = cfg(n, n, 1.0, &[0.0, 1.0, 0.0], batch);
            if let Some(lr) = lr_arg {
                c.lr = lr;
            }
            let ops = run(c, seed, &ts);
            let mut out = String::from("t,m,a,common_sq,pair_q2,m_std,a_std,loss\n");
            for (t, o) in ts.iter().zip(&ops) {
                out.push_str(&format!(
                    "{t},{:.17e},{:.17e},{:.17e},{:.17e},{:.17e},{:.17e},{:.17e}\n",
                    o.m, o.a, o.common_sq, o.pair_q2, o.m_std, o.a_std, o.loss
                ));
            }
            let mut tag = lr_arg.map(|l| format!("_lr{l}")).unwrap_or_default();
            if mode == "sgd" {
                tag.push_str(&rule.tag());
            }
            std::fs::write(format!("{dir}/{mode}_N{n}_s{i}{tag}.csv"), out).unwrap();
            eprintln!("done {mode} N={n} seed {i}");
        }
    }
}

/// Batch size as a function of the width (d = N): `linear:c` is `B = cN` (λ = ηd/B = η/c fixed,
/// the protocol of the first width series), `quadratic:c` is `B = N²/c` (λ = cη/N → 0).
#[derive(Clone, Copy)]
enum BatchRule {
    Linear(usize),
    Quadratic(usize),
}

impl BatchRule {
    fn batch(self, n: usize) -> usize {
        match self {
            BatchRule::Linear(c) => c * n,
            BatchRule::Quadratic(c) => (n * n).div_ceil(c),
        }
    }

    /// File-name tag: empty for the default `linear:8`.
    fn tag(self) -> String {
        match self {
            BatchRule::Linear(8) => String::new(),
            BatchRule::Linear(c) => format!("_lin{c}"),
            BatchRule::Quadratic(c) => format!("_quad{c}"),
        }
    }
}

/// Parse `linear:c` / `quadratic:c` (default `linear:8`).
fn batch_rule(arg: Option<&String>) -> BatchRule {
    let Some(s) = arg else {
        return BatchRule::Linear(8);
    };
    let (kind, c) = s
        .split_once(':')
        .expect("batch rule: linear:c or quadratic:c");
    let c: usize = c.parse().expect("batch rule constant: a positive integer");
    assert!(c > 0, "batch rule constant must be > 0");
    match kind {
        "linear" => BatchRule::Linear(c),
        "quadratic" => BatchRule::Quadratic(c),
        _ => panic!("batch rule: linear:c or quadratic:c"),
    }
}

/// `(m, p, Q, q̄)` of unit rows: mean cosine, |common orthogonal part|², mean squared and mean
/// pair cosine of the orthogonal parts ξ_j (i ≠ j).
fn spread_stats(w: &[f64], n: usize, d: usize) -> (f64, f64, f64, f64) {
    let mut xi = vec![0.0; n * d];
    let mut m = 0.0;
    let mut common = vec![0.0; d];
    for j in 0..n {
        let row = &w[j * d..(j + 1) * d];
        m += row[0] / n as f64;
        let perp = row[1..].iter().map(|v| v * v).sum::<f64>().sqrt();
        for i in 1..d {
            xi[j * d + i] = row[i] / perp;
            common[i] += row[i] / n as f64;
        }
    }
    let p = common.iter().map(|v| v * v).sum::<f64>();
    let (mut q2, mut q1) = (0.0, 0.0);
    for i in 0..n {
        for j in 0..n {
            if i != j {
                let q: f64 = (1..d).map(|k| xi[i * d + k] * xi[j * d + k]).sum();
                q2 += q * q;
                q1 += q;
            }
        }
    }
    let np = (n * (n - 1)) as f64;
    (m, p, q2 / np, q1 / np)
}

/// Simplex orthogonal parts (N = d): `ξ_j ∝ e_j − 1/N` written in the Helmert basis of 1⊥
/// (coordinates 1..d−1), perturbed by `delta`·Gaussian, re-centred and normalised.
fn perturbed_simplex(n: usize, m: f64, delta: f64, seed: u64) -> Vec<f64> {
    let d = n;
    let mut rng = featlab::rng::stream(seed, "simplex");
    let mut xi = vec![0.0; n * d];
    for j in 0..n {
        for k in 1..n {
            // Helmert vector k: (1,..,1 (k times), −k, 0..)/sqrt(k(k+1)).
            let h = if j < k {
                1.0
            } else if j == k {
                -(k as f64)
            } else {
                0.0
            } / ((k * (k + 1)) as f64).sqrt();
            xi[j * d + k] = h + delta * featlab::rng::normal(&mut rng);
        }
    }
    for k in 1..d {
        let mean: f64 = (0..n).map(|j| xi[j * d + k]).sum::<f64>() / n as f64;
        (0..n).for_each(|j| xi[j * d + k] -= mean);
    }
    let s = (1.0 - m * m).sqrt();
    let mut w = vec![0.0; n * d];
    for j in 0..n {
        let nrm = (1..d).map(|k| xi[j * d + k].powi(2)).sum::<f64>().sqrt();
        w[j * d] = m;
        for k in 1..d {
            w[j * d + k] = s * xi[j * d + k] / nrm;
        }
    }
    w
}

/// `dcheck`: the pair-spread order parameter D = Q − q̄² at fixed (m, a), N = d: population-GD
/// relaxation and the one-step SGD feed.
fn dcheck(args: &[String]) {
    let n: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(64);
    let m: f64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(0.357);
    let a: f64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2.63);
    let delta: f64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(0.02);
    let reps: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(2000);
    let b: usize = args.get(5).and_then(|s| s.parse().ok()).unwrap_or(8 * n);
    let d = n;
    let w0 = perturbed_simplex(n, m, delta, 3);
    let st = spread_stats(&w0, n, d);
    let dd = |s: (f64, f64, f64, f64)| s.2 - s.3 * s.3;
    println!(
        "# N = d = {n}, m = {m}, a = {a}: start p = {:.3e}, Q = {:.4e}, qbar = {:.4e}, D = {:.4e}",
        st.1,
        st.2,
        st.3,
        dd(st)
    );
    let mut c = cfg(n, d, 0.0, &[0.0, 1.0, 0.0], BatchMode::Population);
    c.a0 = a;
    let mut pop = Simulator::new(c.clone(), 1).unwrap();
    pop.w = w0.clone();
    pop.a = vec![a; n];
    let k2 = 2.0 * 0.25 * (1.0 - m * m);
    println!(
        "# predicted D relaxation rate 4 a^2 K'' s^2/(N-1) = {:.4}",
        4.0 * a * a * k2 / (n as f64 - 1.0)
    );
    for i in 0..=200 {
        if i % 20 == 0 {
            let s = spread_stats(&pop.w, n, d);
            println!(
                "pop t = {:.2}: m = {:.5} p = {:.2e} D = {:.4e}",
                pop.time(),
                s.0,
                s.1,
                dd(s)
            );
        }
        pop.step(Par::Seq);
    }
    // One step from w0: SGD minus population GD.
    let mut pop = Simulator::new(c.clone(), 1).unwrap();
    pop.w = w0.clone();
    pop.a = vec![a; n];
    pop.step(Par::Seq);
    let sp = spread_stats(&pop.w, n, d);
    let mut cs = c.clone();
    cs.batch = BatchMode::Online { batch: b };
    let mut sim = Simulator::new(cs, 2).unwrap();
    let (mut s1, mut s2, mut sq, mut sq2) = (0.0, 0.0, 0.0, 0.0);
    for _ in 0..reps {
        sim.w = w0.clone();
        sim.a = vec![a; n];
        sim.step(Par::Seq);
        let s = spread_stats(&sim.w, n, d);
        let x = dd(s) - dd(sp);
        s1 += x;
        s2 += x * x;
        let y = s.2 - sp.2;
        sq += y;
        sq2 += y * y;
    }
    let r = reps as f64;
    let (mu, se) = (s1 / r, ((s2 / r - (s1 / r).powi(2)) / r).sqrt());
    let (muq, seq) = (sq / r, ((sq2 / r - (sq / r).powi(2)) / r).sqrt());
    println!("one SGD step (B = {b}, eta = 0.05): mean dD - popGD = {mu:.4e} ± {se:.1e} (per unit time {:.4e}); dQ {muq:.4e} ± {seq:.1e}", mu / 0.05);
    {
        let eq = EquiangularModel::new(
            series(&[0.0, 1.0, 0.5]),
            series(&[0.0, 1.0, 0.0]),
            0.0,
            n as f64,
        )
        .unwrap();
        let lam = 0.05 * d as f64 / b as f64;
        let sm = SpreadModel::new(eq.clone(), d as f64, lam).unwrap();
        let q = SpreadModel::new(eq, d as f64, 0.0).unwrap();
        let s0 = sm.spread_of(st.0, st.1, st.2);
        let want = 0.05 * (sm.rhs(st.0, st.1, a, s0)[3] - q.rhs(st.0, st.1, a, s0)[3]);
        let nm = sm.noise_moments(st.0, st.1, a, s0);
        let ds_meas = if sm.full_frame() { muq } else { mu };
        println!(
            "model dS per step {want:.4e} vs measured {ds_meas:.4e} (ratio {:.3}); {nm:?}",
            ds_meas / want
        );
    }
    let t_run: f64 = args.get(6).and_then(|s| s.parse().ok()).unwrap_or(0.0);
    if t_run > 0.0 {
        sim.w = w0.clone();
        sim.a = vec![a; n];
        let steps = (t_run / 0.05) as usize;
        for i in 0..=steps {
            if i % (steps / 10) == 0 {
                let s = spread_stats(&sim.w, n, d);
                let o = sim.order_params();
                println!("sgd t = {:.1}: m = {:.5} p = {:.2e} Q = {:.4e} D = {:.4e} m_std = {:.4} loss = {:.4}", sim.time(), s.0, s.1, s.2, dd(s), o.m_std, o.loss);
            }
            sim.step(Par::Seq);
        }
    }
}

/// `odes`: the ODE predictions for the `sgdruns` setting at width N (d = N, B = 8N): the limit
/// ODE, the 3-D equiangular ODE (simplex start, as in the preset, and random-init p0), the 4-D
/// spread model without and with noise λ = ηd/B; CSV `ode_N{N}.csv` in `dir`.
fn odes(args: &[String]) {
    let n: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(64);
    let dir = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "/work/tmp/noise".into());
    let nf = n as f64;
    let rule = batch_rule(args.get(2));
    let lambda = 0.05 * nf / rule.batch(n) as f64;
    let ts: Vec<f64> = (0..=200).map(|i| 2.0 * i as f64).collect();
    let (st, te) = (series(&[0.0, 1.0, 0.5]), series(&[0.0, 1.0, 0.0]));
    let lm = LimitModel::new(st.clone(), te.clone(), 1.0);
    let inf = lm.integrate(0.1, 0.1, &ts, 1e-10).unwrap();
    let eq = EquiangularModel::new(st.clone(), te.clone(), 1.0, nf).unwrap();
    let p0 = (1.0 - 0.01) / nf;
    let e3s = eq.integrate(0.1, 0.0, 0.1, &ts, 1e-10).unwrap();
    let e3r = eq.integrate(0.1, p0, 0.1, &ts, 1e-10).unwrap();
    let m4 = SpreadModel::new(eq.clone(), nf, 0.0).unwrap();
    let s0 = m4.random_init_spread();
    let p4 = m4.integrate(&[0.1, p0, 0.1, s0, 0.0], &ts, 1e-10).unwrap();
    let m4n = SpreadModel::new(eq.clone(), nf, lambda).unwrap();
    let n4 = m4n.integrate(&[0.1, p0, 0.1, s0, 0.0], &ts, 1e-9).unwrap();
    let n4s = m4n
        .integrate(&[0.1, 0.0, 0.1, 0.0, 0.0], &ts, 1e-9)
        .unwrap();
    let m6 = m4.clone().with_random_init_spectrum(1000).unwrap();
    let p6 = m6
        .integrate(&m6.random_init_state(0.1, 0.1), &ts, 1e-10)
        .unwrap();
    let m6n = m4n.clone().with_random_init_spectrum(1000).unwrap();
    let n6 = m6n
        .integrate(&m6n.random_init_state(0.1, 0.1), &ts, 1e-9)
        .unwrap();
    let mut out = String::from("t,m_inf,a_inf,m_3s,a_3s,m_3r,a_3r,m_4pop,a_4pop,p_4pop,S_4pop,m_4sgd,a_4sgd,p_4sgd,S_4sgd,m_4sgd_simplex,a_4sgd_simplex,S_4sgd_simplex,m_6pop,a_6pop,p_6pop,S_6pop,m_6sgd,a_6sgd,p_6sgd,S_6sgd,Vm_6sgd\n");
    for i in 0..ts.len() {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            ts[i],
            inf[i].0,
            inf[i].1,
            e3s[i][0],
            e3s[i][2],
            e3r[i][0],
            e3r[i][2],
            p4[i][0],
            p4[i][2],
            p4[i][1],
            p4[i][3],
            n4[i][0],
            n4[i][2],
            n4[i][1],
            n4[i][3],
            n4s[i][0],
            n4s[i][2],
            n4s[i][3],
            p6[i][0],
            p6[i][2],
            p6[i][1],
            m6.total_spread(&p6[i]),
            n6[i][0],
            n6[i][2],
            n6[i][1],
            m6n.total_spread(&n6[i]),
            n6[i][4]
        ));
    }
    std::fs::write(format!("{dir}/ode_N{n}{}.csv", rule.tag()), out).unwrap();
    println!("lambda = {lambda}, S0 = {s0:.4e}");
}

/// `simplexrun`: online SGD in the `sgdruns` setting from the regular simplex (m0 = a0 = 0.1).
fn simplexrun(args: &[String]) {
    let n: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(128);
    let seeds: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(2);
    let t_max: f64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100.0);
    let dir = args
        .get(3)
        .cloned()
        .unwrap_or_else(|| "/work/tmp/noise".into());
    std::fs::create_dir_all(&dir).unwrap();
    let ts: Vec<f64> = (0..=(t_max / 2.0) as usize)
        .map(|i| 2.0 * i as f64)
        .collect();
    for i in 0..seeds {
        let c = cfg(
            n,
            n,
            1.0,
            &[0.0, 1.0, 0.0],
            BatchMode::Online { batch: 8 * n },
        );
        let mut sim = Simulator::new(c, derive_seed(0, &format!("simplex-seed-{i}"))).unwrap();
        sim.w = perturbed_simplex(n, 0.1, 0.0, 0);
        sim.a = vec![0.1; n];
        let mut out = String::from("t,m,a,common_sq,pair_q2\n");
        for &t in &ts {
            let target = (t / sim.cfg.lr).round() as u64;
            while sim.steps < target {
                sim.step(Par::Seq);
            }
            let o = sim.order_params();
            out.push_str(&format!(
                "{t},{:.17e},{:.17e},{:.17e},{:.17e}\n",
                o.m, o.a, o.common_sq, o.pair_q2
            ));
        }
        std::fs::write(format!("{dir}/sgd_simplex_N{n}_s{i}.csv"), out).unwrap();
        eprintln!("done simplex N={n} seed {i}");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("sgdruns") => sgdruns(&args[1..]),
        Some("dcheck") => dcheck(&args[1..]),
        Some("odes") => odes(&args[1..]),
        Some("simplexrun") => simplexrun(&args[1..]),
        _ => eprintln!("usage: unlearning_studies sgdruns N seeds dir [modes] [lr|-] [linear:c|quadratic:c] [first] | odes N dir [rule] | simplexrun N seeds t dir | dcheck N m a delta reps B [t]"),
    }
}
