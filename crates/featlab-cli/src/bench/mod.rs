//! `featlab bench`: throughput benchmarks of training, one JSON line per measurement on
//! stdout (issue 8).
//!
//! Cases (each a subcommand with its own `--help`):
//! * `gd` — full-batch GD on the two-layer net of `shared/peers/twolayer_gd.py` ([`gd`]);
//! * `deep-linear` — GD on a deep linear net, with the pure-GEMM cost of the same products
//!   measured in the same process and the ratio ([`layered`]);
//! * `mlp` — the same for a deep ReLU MLP ([`layered`]);
//! * `flow-vs-gd` — adaptive gradient flow against GD at lr 1e-3 on the `staircase` preset
//!   ([`flow_vs_gd`]);
//! * `sweep` — a sweep of 100,000 small GD points: points/s against `gd`'s step rate, disk
//!   bytes, files, merge time, peak memory ([`sweep`]);
//! * `agop`, `rfm` — the NFA measurement paths against `shared/peers/agop.py` and
//!   `rfm.py` ([`nfa`]);
//! * `all` — the standard set.
//!
//! Speed is measured here, never in timed tests.

pub mod flow_vs_gd;
pub mod gd;
pub mod layered;
pub mod nfa;
pub mod sweep;

use anyhow::Result;
use serde_json::Value;

pub use flow_vs_gd::FlowVsGdArgs;
pub use gd::GdArgs;
pub use layered::{DeepLinearArgs, MlpArgs};
pub use nfa::{AgopArgs, RfmArgs};

/// Arguments of `featlab bench`.
#[derive(clap::Args, Debug, Clone)]
#[command(
    subcommand_required = true,
    arg_required_else_help = true,
    after_help = "Every case prints one JSON line per measurement. Run on an idle machine: \
                  the numbers are only meaningful when nothing else shares the cores."
)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub case: BenchCase,
}

/// The benchmark cases.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum BenchCase {
    /// Full-batch GD on a two-layer net (the peer-script problem): steps/s and GFLOP/s.
    ///
    /// Solves exactly the problem of `shared/peers/twolayer_gd.py`: X (n × d) i.i.d.
    /// N(0, 1); y = relu(x₀) + 0.5·x₁²; f(x) = Σ_i a_i σ(w_i·x); loss ½·mean (f − y)²;
    /// W, a initialised 1e-3·N(0, 1); GD with lr 0.05. `--data DIR` loads X.npy, y.npy,
    /// W0.npy, a0.npy instead, so the final loss can be compared with the reference
    /// script's. `gflops` counts 4·n·d·m + 4·n·m flops per step (the two GEMMs and the two
    /// output GEMVs; elementwise work not counted). `solo_step_fraction`: with two threads
    /// on a small batch (the spinning helper), the share of timed steps run on one thread
    /// because two measured slower (null otherwise). Issue 8 sizes: small
    /// `--n 256 --d 16 --m 64 --steps 20000`, medium `--n 2048 --d 64 --m 512 --steps 200`.
    Gd(GdArgs),
    /// GD on a deep linear net (default L = 4, width 256, n = 2048) against the pure-GEMM
    /// cost of the same products.
    ///
    /// Times full GD steps (forward, loss, backward, update through `Problem` and
    /// `GradientDescent`, as the runner does), then the same 3L − 1 matrix products alone
    /// through `featlab::linalg::matmul` (same shapes, layouts and thread count), in
    /// alternating rounds in the same process. Prints `steps_per_sec`, `gemm_steps_per_sec`
    /// and `ratio` = step time / GEMM time (issue 8 target: ≤ 1.3).
    DeepLinear(DeepLinearArgs),
    /// GD on a deep MLP (default ReLU, 3 hidden layers of 256, biases, c = 1, n = 2048)
    /// against the pure-GEMM cost of the same products.
    ///
    /// Same method as `deep-linear`: `ratio` = time of a GD step / time of its matrix
    /// products alone (issue 8 target: ≤ 1.3).
    Mlp(MlpArgs),
    /// Adaptive gradient flow vs GD at lr 1e-3 on the `staircase` preset.
    ///
    /// Runs the preset as `featlab run` does (adaptive Dormand–Prince, then the `[reference]`
    /// GD run from the same initialisation, both recording the trajectory) and prints the
    /// gradient evaluations, drop times and training wall time of each, the ratio of
    /// evaluations and of wall times, and whether issue 8's target holds (≥ 20× fewer
    /// evaluations, drop times within 1%, lower wall time).
    FlowVsGd(FlowVsGdArgs),
    /// A large sweep of a small GD config: overhead per point, disk, files, merge, memory.
    ///
    /// Runs `--points` points (default 100,000) of GD on a two-layer ReLU net (n 64, d 8,
    /// width 16, 100 steps each) with `featlab sweep --jobs J` and the default [save], then
    /// `featlab sweep merge`. Prints points/s, the per-job step rate it implies against
    /// `featlab bench gd` on the same problem (measured first), disk bytes and files of the
    /// sweep directory, merge seconds and peak RSS. Issue 26 targets at 100,000 points:
    /// ≤ 300 MB, ≤ 100 files, merge ≤ 10 s, throughput ≥ 90% of the prediction.
    Sweep(sweep::SweepBenchArgs),
    /// AGOP and PTK of every layer of a ReLU MLP (the `shared/peers/agop.py` problem):
    /// seconds, counted GFLOP/s and the fraction of the same run's GEMM rate.
    ///
    /// Default size: n = 1500, d = 64, 5 hidden layers of 256, c = 10, no biases. Times
    /// `featlab::theory::nfa::layer_gradients` (best and median of `--repeats`) and the
    /// dominant GEMM of the pass, (n·c × width)·(width × width), on the same threads.
    /// Prints `trace_G1` to compare with the peer on the same draws (`--data`).
    Agop(AgopArgs),
    /// The Recursive Feature Machine loop of `shared/peers/rfm.py`: seconds, counted
    /// GFLOP/s, peak memory and trace(M).
    ///
    /// Laplace kernel (L = 10), ridge 1e-3 by Cholesky, `--iters` AGOP updates of M with
    /// the 1/n scale, from M = I. Default n = 1500, d = 64, c = 10, 5 iterations.
    Rfm(RfmArgs),
    /// The standard set: `gd` small and medium for relu, quadratic and linear, then
    /// `deep-linear`, `mlp` and `flow-vs-gd` with their defaults.
    All(AllArgs),
}

/// Arguments of `featlab bench all`.
#[derive(clap::Args, Debug, Clone)]
pub struct AllArgs {
    /// Threads for the matrix products (results do not depend on it).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Ten times fewer steps everywhere (to check that the benchmarks run, not to measure).
    #[arg(long)]
    pub quick: bool,
}

/// Run `featlab bench`.
pub fn bench_command(args: &BenchArgs) -> Result<()> {
    match &args.case {
        BenchCase::Gd(a) => print(gd::bench_gd(a)?),
        BenchCase::DeepLinear(a) => print(layered::bench_deep_linear(a)?),
        BenchCase::Mlp(a) => print(layered::bench_mlp(a)?),
        BenchCase::FlowVsGd(a) => print(flow_vs_gd::bench_flow_vs_gd(a)?),
        BenchCase::Sweep(a) => print(sweep::bench_sweep(a)?),
        BenchCase::Agop(a) => print(nfa::bench_agop(a)?),
        BenchCase::Rfm(a) => print(nfa::bench_rfm(a)?),
        BenchCase::All(a) => bench_all(a),
    }
}

fn print(line: Value) -> Result<()> {
    println!("{line}");
    Ok(())
}

/// `featlab bench all`: the standard set, one line each as it completes.
fn bench_all(args: &AllArgs) -> Result<()> {
    let div = if args.quick { 10 } else { 1 };
    for act in ["relu", "quadratic", "linear"] {
        for (n, d, m, steps) in [(256, 16, 64, 20000), (2048, 64, 512, 200)] {
            let a = GdArgs {
                n,
                d,
                m,
                act: act.into(),
                steps: (steps / div).max(1),
                threads: args.threads,
                ..GdArgs::default()
            };
            print(gd::bench_gd(&a)?)?;
        }
    }
    let mut dl = DeepLinearArgs::default();
    dl.common.threads = args.threads;
    dl.common.steps = (dl.common.steps / div).max(1);
    print(layered::bench_deep_linear(&dl)?)?;
    let mut mlp = MlpArgs::default();
    mlp.common.threads = args.threads;
    mlp.common.steps = (mlp.common.steps / div).max(1);
    print(layered::bench_mlp(&mlp)?)?;
    let fg = FlowVsGdArgs {
        threads: args.threads,
        ..FlowVsGdArgs::default()
    };
    print(flow_vs_gd::bench_flow_vs_gd(&fg)?)
}

/// A rayon pool of `threads` threads and the matching GEMM parallelism (`Par::Seq` for 1).
pub(crate) fn pool_and_par(threads: usize) -> Result<(rayon::ThreadPool, faer::Par)> {
    if threads == 0 {
        anyhow::bail!("--threads must be ≥ 1");
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let par = if threads > 1 {
        faer::Par::rayon(threads)
    } else {
        faer::Par::Seq
    };
    Ok((pool, par))
}
