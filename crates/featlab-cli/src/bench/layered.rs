//! `featlab bench deep-linear` and `featlab bench mlp`: a full GD step of a layered net
//! against the pure-GEMM cost of the same matrix products, measured in the same process.
//!
//! For widths `[k_0 = d, k_1, …, k_L = c]` and a batch of n samples, one GD step of a deep
//! linear net or an MLP does 3L − 1 matrix products (see `model::deep_linear`,
//! `model::mlp`):
//! * forward, l = 1…L: `Z_l = H_{l−1} W_lᵀ` (n × k_l);
//! * backward, l = L…1: `∂W_l = G_lᵀ H_{l−1}` (k_l × k_{l−1}) and, for l > 1,
//!   `G_{l−1} = G_l W_l` (n × k_{l−1}),
//!
//! i.e. `2n·(3 Σ_l k_l k_{l−1} − k_1 k_0)` flops. [`GemmOnly`] runs exactly these
//! products through `featlab::linalg::matmul` with the models' layouts (row-major weights
//! and gradients inside a flat vector, column-major activations), so `ratio` = step time /
//! GEMM time is the overhead of everything else (loss, activations, biases, the update).

use super::gd::activation;
use super::pool_and_par;
use anyhow::Result;
use faer::{Accum, Mat, MatRef, Par};
use featlab::data::Dataset;
use featlab::linalg::{matmul, view, view_mut};
use featlab::model::deep_linear::DeepLinear;
use featlab::model::mlp::Mlp;
use featlab::model::{Loss, Model};
use featlab::rng::{normal_vec, stream};
use featlab::train::{GradientDescent, Problem, Stepper};
use serde_json::{json, Value};
use std::time::Instant;

/// Issue 8's target for `ratio` (step time / pure-GEMM time).
pub const TARGET_RATIO: f64 = 1.3;

/// Flags shared by the layered benchmarks.
#[derive(clap::Args, Debug, Clone)]
pub struct LayeredCommon {
    /// Samples n.
    #[arg(long, default_value_t = 2048)]
    pub n: usize,
    /// Input dimension d.
    #[arg(long, default_value_t = 256)]
    pub d: usize,
    /// Width of every hidden layer.
    #[arg(long, default_value_t = 256)]
    pub width: usize,
    /// Number of weight layers L.
    #[arg(long, default_value_t = 4)]
    pub depth: usize,
    /// Timed GD steps; the GEMM-only products are repeated as many times.
    #[arg(long, default_value_t = 100)]
    pub steps: u64,
    /// Alternating rounds (steps, then products, then steps…) the timing is split into,
    /// so that slow drifts of the machine's load affect both alike.
    #[arg(long, default_value_t = 5)]
    pub rounds: u64,
    /// Threads for the matrix products (results do not depend on it).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Seed of the data and initialisation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Arguments of `featlab bench deep-linear`.
#[derive(clap::Parser, Debug, Clone)]
pub struct DeepLinearArgs {
    #[command(flatten)]
    pub common: LayeredCommon,
    /// Outputs c (the teacher is linear, y = T x with T c × d, entries N(0, 1/d)).
    #[arg(long, default_value_t = 256)]
    pub c: usize,
}

impl Default for DeepLinearArgs {
    /// The command-line defaults (issue 8: L = 4, width 256, n = 2048).
    fn default() -> Self {
        <DeepLinearArgs as clap::Parser>::parse_from(["deep-linear"])
    }
}

/// Arguments of `featlab bench mlp`.
#[derive(clap::Parser, Debug, Clone)]
pub struct MlpArgs {
    #[command(flatten)]
    pub common: LayeredCommon,
    /// Outputs c (targets y_k = relu(x_k) + 0.5·x_{k+1}², indices mod d).
    #[arg(long, default_value_t = 1)]
    pub c: usize,
    /// Activation: relu, quadratic (alias quad), linear, tanh, gelu.
    #[arg(long, default_value = "relu")]
    pub act: String,
    /// No biases.
    #[arg(long)]
    pub no_bias: bool,
}

impl Default for MlpArgs {
    /// The command-line defaults.
    fn default() -> Self {
        <MlpArgs as clap::Parser>::parse_from(["mlp"])
    }
}

/// Widths `[d, width × (L − 1), c]`, checking the flags.
fn widths(common: &LayeredCommon, c: usize) -> Result<Vec<usize>> {
    let LayeredCommon {
        n,
        d,
        width,
        depth,
        steps,
        rounds,
        threads,
        lr,
        ..
    } = *common;
    if [n, d, width, depth, c, threads].contains(&0) || steps == 0 || rounds == 0 {
        anyhow::bail!(
            "--n, --d, --width, --depth, --c, --steps, --rounds and --threads must all be ≥ 1"
        );
    }
    if !(lr.is_finite() && lr > 0.0) {
        anyhow::bail!("--lr must be a finite number > 0, got {lr}");
    }
    let mut w = vec![d];
    w.extend(std::iter::repeat_n(width, depth - 1));
    w.push(c);
    Ok(w)
}

/// Standard-normal inputs X (n × d) from the seeded stream `bench-data`.
fn inputs(n: usize, d: usize, seed: u64) -> Mat<f64> {
    let xv = normal_vec(&mut stream(seed, "bench-data"), n * d, 1.0);
    Mat::from_fn(n, d, |i, j| xv[i * d + j])
}

/// Weights N(0, gain/fan_in) in every `W*` block, biases 0.
fn init(model: &dyn Model, hidden_gain: f64, seed: u64) -> Vec<f64> {
    let mut p = vec![0.0; model.num_params()];
    let mut r = stream(seed, "bench-init");
    let nblocks = model.blocks().len();
    for (i, b) in model.blocks().iter().enumerate() {
        if b.shape.len() == 2 {
            let last = model.blocks()[i + 1..nblocks]
                .iter()
                .all(|o| o.shape.len() != 2);
            let gain = if last { 1.0 } else { hidden_gain };
            let v = normal_vec(&mut r, b.len(), (gain / b.shape[1] as f64).sqrt());
            p[b.range()].copy_from_slice(&v);
        }
    }
    p
}

/// Run `featlab bench deep-linear` and return its JSON line.
pub fn bench_deep_linear(args: &DeepLinearArgs) -> Result<Value> {
    let w = widths(&args.common, args.c)?;
    let (n, d, c) = (args.common.n, w[0], args.c);
    let x = inputs(n, d, args.common.seed);
    let tv = normal_vec(
        &mut stream(args.common.seed, "bench-teacher"),
        c * d,
        (1.0 / d as f64).sqrt(),
    );
    let t = view(&tv, c, d);
    let mut y = Mat::zeros(n, c);
    matmul(
        y.as_mut(),
        Accum::Replace,
        x.as_ref(),
        t.transpose(),
        1.0,
        Par::Seq,
    );
    let data = Dataset::new(x, y)?;
    let depth = w.len() - 1;
    let model = DeepLinear::new(w.clone(), vec![1.0; depth], vec![1.0; depth]);
    let params = init(&model, 1.0, args.common.seed);
    let mut out = time_against_gemms(&model, &w, &data, params, &args.common)?;
    out["bench"] = json!("deep-linear");
    Ok(out)
}

/// Run `featlab bench mlp` and return its JSON line.
pub fn bench_mlp(args: &MlpArgs) -> Result<Value> {
    let act = activation(&args.act)?;
    let w = widths(&args.common, args.c)?;
    let (n, d, c) = (args.common.n, w[0], args.c);
    let x = inputs(n, d, args.common.seed);
    let y = Mat::from_fn(n, c, |i, k| {
        x[(i, k % d)].max(0.0) + 0.5 * x[(i, (k + 1) % d)].powi(2)
    });
    let data = Dataset::new(x, y)?;
    let depth = w.len() - 1;
    let model = Mlp::new(
        w.clone(),
        act,
        !args.no_bias,
        vec![1.0; depth],
        vec![1.0; depth],
    );
    let params = init(&model, 2.0, args.common.seed);
    let mut out = time_against_gemms(&model, &w, &data, params, &args.common)?;
    out["bench"] = json!("mlp");
    out["act"] = json!(args.act);
    out["bias"] = json!(!args.no_bias);
    Ok(out)
}

/// Time `steps` GD steps of `model` and `steps` repetitions of its matrix products alone,
/// in `rounds` alternating rounds on a pool of `threads` threads.
fn time_against_gemms(
    model: &dyn Model,
    widths: &[usize],
    data: &Dataset,
    params: Vec<f64>,
    common: &LayeredCommon,
) -> Result<Value> {
    let (pool, par) = pool_and_par(common.threads)?;
    let rounds = common.rounds.min(common.steps);
    let (secs_step, secs_gemm, initial_loss, final_loss) =
        pool.install(|| -> Result<(f64, f64, f64, f64)> {
            let mut problem = Problem::new(model, data, Loss::Mse, 0.0, par);
            let initial_loss = problem.data_loss(&params);
            let mut gd = GradientDescent::new(common.lr, params.clone());
            let mut gemm = GemmOnly::new(widths, data.x.as_ref(), common.seed);
            for _ in 0..3 {
                gd.step(&mut problem, f64::INFINITY)?;
                gemm.run(par);
            }
            let (mut secs_step, mut secs_gemm) = (0.0, 0.0);
            for r in 0..rounds {
                let k = common.steps / rounds + u64::from(r < common.steps % rounds);
                let start = Instant::now();
                for _ in 0..k {
                    gd.step(&mut problem, f64::INFINITY)?;
                }
                secs_step += start.elapsed().as_secs_f64();
                let start = Instant::now();
                for _ in 0..k {
                    gemm.run(par);
                }
                secs_gemm += start.elapsed().as_secs_f64();
            }
            Ok((
                secs_step,
                secs_gemm,
                initial_loss,
                problem.data_loss(gd.params()),
            ))
        })?;
    if !final_loss.is_finite() {
        anyhow::bail!(
            "the benchmark run diverged (final loss {final_loss}); try a smaller --lr than {}",
            common.lr
        );
    }
    let flops = gemm_flops(common.n, widths);
    let steps = common.steps as f64;
    let ratio = secs_step / secs_gemm;
    Ok(json!({
        "bench": "", "n": common.n, "widths": widths, "threads": common.threads,
        "steps": common.steps, "rounds": rounds, "lr": common.lr,
        "seconds": secs_step, "steps_per_sec": steps / secs_step,
        "gemm_seconds": secs_gemm, "gemm_steps_per_sec": steps / secs_gemm,
        "gemm_flops_per_step": flops, "gflops": flops * steps / secs_step / 1e9,
        "gemm_gflops": flops * steps / secs_gemm / 1e9,
        "ratio": ratio, "target_ratio": TARGET_RATIO, "meets_target": ratio <= TARGET_RATIO,
        "initial_loss": initial_loss, "final_loss": final_loss,
    }))
}

/// Flops of the 3L − 1 matrix products of one step: `2n·(3 Σ_l k_l k_{l−1} − k_1 k_0)`.
pub fn gemm_flops(n: usize, widths: &[usize]) -> f64 {
    let per_layer: Vec<f64> = widths
        .windows(2)
        .map(|w| 2.0 * n as f64 * (w[0] * w[1]) as f64)
        .collect();
    3.0 * per_layer.iter().sum::<f64>() - per_layer[0]
}

/// The matrix products of one GD step of a layered net, alone: same shapes, layouts and
/// `linalg::matmul` calls as `DeepLinear`/`Mlp` forward and backward (row-major weights and
/// gradients in flat vectors, column-major n × k activations).
pub struct GemmOnly<'x> {
    widths: Vec<usize>,
    x: MatRef<'x, f64>,
    /// Weights W_l (k_l × k_{l−1}, row-major), concatenated.
    params: Vec<f64>,
    grad: Vec<f64>,
    offsets: Vec<usize>,
    /// H_1 … H_{L−1} (n × k_l).
    hs: Vec<Mat<f64>>,
    /// G_1 … G_{L−1} (n × k_l).
    gs: Vec<Mat<f64>>,
    out: Mat<f64>,
    d_out: Mat<f64>,
}

impl<'x> GemmOnly<'x> {
    /// Buffers for inputs `x` (n × widths[0]); weights and the output gradient are filled
    /// with seeded normal values (the products' cost does not depend on them).
    pub fn new(widths: &[usize], x: MatRef<'x, f64>, seed: u64) -> Self {
        let n = x.nrows();
        let l = widths.len() - 1;
        let mut offsets = vec![0];
        for w in widths.windows(2) {
            offsets.push(offsets.last().unwrap() + w[0] * w[1]);
        }
        let np = offsets[l];
        let mut r = stream(seed, "bench-gemm-only");
        let params = normal_vec(&mut r, np, (1.0 / widths[0] as f64).sqrt());
        let dv = normal_vec(&mut r, n * widths[l], 1.0 / n as f64);
        GemmOnly {
            widths: widths.to_vec(),
            x,
            params,
            grad: vec![0.0; np],
            offsets,
            hs: (1..l).map(|i| Mat::zeros(n, widths[i])).collect(),
            gs: (1..l).map(|i| Mat::zeros(n, widths[i])).collect(),
            out: Mat::zeros(n, widths[l]),
            d_out: Mat::from_fn(n, widths[l], |i, j| dv[i * widths[l] + j]),
        }
    }

    /// One forward and one backward sweep of products.
    pub fn run(&mut self, par: Par) {
        let l = self.widths.len() - 1;
        for i in 0..l {
            let w = view(
                &self.params[self.offsets[i]..self.offsets[i + 1]],
                self.widths[i + 1],
                self.widths[i],
            );
            let (prev, next) = self.hs.split_at_mut(i);
            let src = if i == 0 { self.x } else { prev[i - 1].as_ref() };
            let dst = if i + 1 == l {
                self.out.as_mut()
            } else {
                next[0].as_mut()
            };
            matmul(dst, Accum::Replace, src, w.transpose(), 1.0, par);
        }
        for i in (0..l).rev() {
            let (fo, fi) = (self.widths[i + 1], self.widths[i]);
            let input = if i == 0 {
                self.x
            } else {
                self.hs[i - 1].as_ref()
            };
            let (gi_part, gip1_part) = self.gs.split_at_mut(i.min(l - 1));
            let g_out = if i + 1 == l {
                self.d_out.as_ref()
            } else {
                gip1_part[0].as_ref()
            };
            let gw = view_mut(&mut self.grad[self.offsets[i]..self.offsets[i + 1]], fo, fi);
            matmul(gw, Accum::Replace, g_out.transpose(), input, 1.0, par);
            if i > 0 {
                let w = view(&self.params[self.offsets[i]..self.offsets[i + 1]], fo, fi);
                matmul(gi_part[i - 1].as_mut(), Accum::Replace, g_out, w, 1.0, par);
            }
        }
    }

    /// The output of the last forward sweep (to keep the work observable).
    pub fn out(&self) -> MatRef<'_, f64> {
        self.out.as_ref()
    }

    /// Weight W_{l+1} (k_{l+1} × k_l, row-major view), as the products see it.
    pub fn weight(&self, l: usize) -> MatRef<'_, f64> {
        view(
            &self.params[self.offsets[l]..self.offsets[l + 1]],
            self.widths[l + 1],
            self.widths[l],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The GEMM-only sweep computes the deep linear net's forward output and gradient
    /// (with the same weights and the same output gradient), so it times the same products.
    #[test]
    fn gemm_only_matches_deep_linear_forward_and_backward() {
        let widths = vec![5, 4, 3, 2];
        let n = 7;
        let x = inputs(n, 5, 3);
        let mut g = GemmOnly::new(&widths, x.as_ref(), 1);
        g.run(Par::Seq);
        let model = DeepLinear::new(widths.clone(), vec![1.0; 3], vec![1.0; 3]);
        let mut ws = model.workspace(n);
        model.forward(&g.params, x.as_ref(), &mut ws);
        ws.d_out.copy_from(g.d_out.as_ref());
        let mut grad = vec![0.0; model.num_params()];
        model.backward(&g.params, x.as_ref(), &mut grad, &mut ws);
        for i in 0..n {
            for j in 0..2 {
                assert_eq!(ws.out[(i, j)].to_bits(), g.out()[(i, j)].to_bits());
            }
        }
        assert_eq!(grad, g.grad);
        assert_eq!(g.weight(2).nrows(), 2);
        // 2n(3·(20 + 12 + 6) − 20)
        assert_eq!(gemm_flops(n, &widths), 2.0 * 7.0 * (3.0 * 38.0 - 20.0));
    }
}
