//! `featlab bench gd`: throughput of full-batch GD on a two-layer net.
//!
//! It solves exactly the problem of `shared/peers/twolayer_gd.py`:
//! X (n × d) i.i.d. N(0, 1); y = relu(x₀) + 0.5·x₁²; f(x) = Σ_i a_i σ(w_i·x);
//! loss ½·mean (f − y)²; W, a initialised 1e-3·N(0, 1); GD with lr 0.05.
//! `--data DIR` loads `X.npy`, `y.npy`, `W0.npy`, `a0.npy` instead (e.g. dumped by the
//! reference script), so final losses can be compared to the reference bit for bit.

use anyhow::{Context, Result};
use faer::Mat;
use featlab::data::Dataset;
use featlab::model::two_layer::TwoLayer;
use featlab::model::{Activation, Loss, Model};
use featlab::rng::{normal_vec, stream};
use featlab::train::{GradientDescent, Problem, Stepper};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `featlab bench gd`.
#[derive(clap::Parser, Debug, Clone)]
pub struct GdArgs {
    /// Samples.
    #[arg(long, default_value_t = 256)]
    pub n: usize,
    /// Input dimension.
    #[arg(long, default_value_t = 16)]
    pub d: usize,
    /// Hidden width (neurons).
    #[arg(long, default_value_t = 64)]
    pub m: usize,
    /// Activation: relu, quadratic (alias quad), linear, tanh, gelu.
    #[arg(long, default_value = "relu")]
    pub act: String,
    /// Timed GD steps (after 10 warm-up steps).
    #[arg(long, default_value_t = 20000)]
    pub steps: u64,
    /// Threads for the matrix products (results do not depend on it).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Learning rate.
    #[arg(long, default_value_t = 0.05)]
    pub lr: f64,
    /// Directory with X.npy, y.npy, W0.npy, a0.npy to use instead of featlab's own draws.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Seed for featlab's own draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl Default for GdArgs {
    /// The command-line defaults (the small size of issue 8, ReLU).
    fn default() -> Self {
        <GdArgs as clap::Parser>::parse_from(["gd"])
    }
}

/// Parse an activation name.
pub(crate) fn activation(name: &str) -> Result<Activation> {
    Ok(match name {
        "relu" => Activation::Relu,
        "quad" | "quadratic" => Activation::Quadratic,
        "linear" => Activation::Linear,
        "tanh" => Activation::Tanh,
        "gelu" => Activation::Gelu,
        other => {
            anyhow::bail!("unknown activation `{other}` (relu, quadratic, linear, tanh, gelu)")
        }
    })
}

/// Floating-point operations of one GD step on the scalar-output two-layer net, counting
/// the two GEMMs (Z = X W₁ᵀ and ∂W₁ = dZᵀ X, 2·n·d·m each) and the two output GEMVs
/// (f = H a and ∂a = Hᵀ r, 2·n·m each); elementwise work is not counted.
pub fn gd_flops_per_step(n: usize, d: usize, m: usize) -> f64 {
    4.0 * (n * d * m) as f64 + 4.0 * (n * m) as f64
}

/// Run `featlab bench gd` and return its JSON line.
pub fn bench_gd(args: &GdArgs) -> Result<Value> {
    let act = activation(&args.act)?;
    if args.n == 0 || args.d == 0 || args.m == 0 || args.steps == 0 || args.threads == 0 {
        anyhow::bail!("--n, --d, --m, --steps and --threads must all be ≥ 1");
    }
    let (data, params) = match &args.data {
        Some(dir) => {
            let rd = |f: &str| {
                featlab::data::io::read_npy(&dir.join(f))
                    .with_context(|| format!("loading {f} from {}", dir.display()))
            };
            let (x, y, w0, a0) = (rd("X.npy")?, rd("y.npy")?, rd("W0.npy")?, rd("a0.npy")?);
            let mut p = w0.data.clone();
            p.extend(&a0.data);
            (Dataset::new(x.to_mat(), y.to_mat())?, p)
        }
        None => {
            let mut r = stream(args.seed, "bench-data");
            let xv = normal_vec(&mut r, args.n * args.d, 1.0);
            let x = Mat::from_fn(args.n, args.d, |i, j| xv[i * args.d + j]);
            let y = Mat::from_fn(args.n, 1, |i, _| {
                x[(i, 0)].max(0.0) + 0.5 * x[(i, 1 % args.d)].powi(2)
            });
            let mut p = normal_vec(
                &mut stream(args.seed, "bench-init"),
                args.m * args.d + args.m,
                1e-3,
            );
            p.truncate(args.m * args.d + args.m);
            (Dataset::new(x, y)?, p)
        }
    };
    let (n, d) = (data.n(), data.d());
    let m = params.len() / (d + 1);
    let model = TwoLayer::new(d, m, 1, act, false);
    if params.len() != model.num_params() {
        anyhow::bail!("W0/a0 sizes ({} values) do not fit d = {d}", params.len());
    }
    let (pool, par) = super::pool_and_par(args.threads)?;
    let (secs, final_loss, joins) = pool.install(|| -> Result<(f64, f64, Option<_>)> {
        let mut problem = Problem::new(&model, &data, Loss::Mse, 0.0, par);
        let mut gd = GradientDescent::new(args.lr, params.clone());
        for _ in 0..10.min(args.steps) {
            gd.step(&mut problem, f64::INFINITY)?;
        }
        let mut gd = GradientDescent::new(args.lr, params.clone());
        let before = problem.join_stats().unwrap_or_default();
        let start = Instant::now();
        for _ in 0..args.steps {
            gd.step(&mut problem, f64::INFINITY)?;
        }
        let secs = start.elapsed().as_secs_f64();
        let joins = problem.join_stats().map(|s| s.since(before));
        Ok((secs, problem.data_loss(gd.params()), joins))
    })?;
    let flops_per_step = gd_flops_per_step(n, d, m);
    let sps = args.steps as f64 / secs;
    Ok(json!({
            "bench": "gd", "n": n, "d": d, "m": m, "act": args.act, "steps": args.steps, "threads": args.threads,
            "seconds": secs, "steps_per_sec": sps, "flops_per_step": flops_per_step, "gflops": flops_per_step * sps / 1e9, "final_loss": final_loss,
            "data": args.data.as_ref().map(|p| p.display().to_string()),
            // two threads on a small batch: the share of timed steps that ran on one thread
            // because two measured slower (null when the spinning helper is not used)
            "solo_step_fraction": joins.map(|j| j.solo as f64 / j.joins.max(1) as f64),
    }))
}
