//! `featlab bench agop` and `featlab bench rfm`: the NFA measurement paths against the
//! peer scripts `shared/peers/agop.py` and `shared/peers/rfm.py` (issue 25).
//!
//! * `agop`: the AGOP and PTK of every layer of a bias-free MLP (`--depth` hidden layers of
//!   `--width`, c outputs) over n samples, by `featlab::theory::nfa::layer_gradients`;
//!   weights N(0, 1/fan_in), inputs N(0, I). Flops are counted by
//!   `agop::layer_gradients_flops`; the same run times the dominant GEMM of the pass,
//!   `(n·c × width) · (width × width)` through `linalg::matmul` on the same threads, and
//!   reports `gemm_gflops` and `fraction_of_gemm_rate` = achieved / GEMM GFLOP/s.
//! * `rfm`: the peer's RFM loop (Laplace kernel, L = 10, reg 1e-3, M₀ = I, `iters` times
//!   solve then M ← AGOP with the 1/n scale), on x ~ N(0, I) and one-hot labels.
//!
//! `--data DIR` loads the peer's own draws (`X.npy`, `W1.npy` … for agop; `X.npy`,
//! `Y.npy` for rfm; written by `benches/peers.sh`), so `trace_G1` / `trace_M` can be
//! compared with the peer's to 1e-10.

use super::gd::activation;
use super::pool_and_par;
use anyhow::{Context, Result};
use faer::{Accum, Mat, MatRef};
use featlab::linalg::matmul;
use featlab::model::LayerStack;
use featlab::rng::{normal_vec, stream};
use featlab::theory::nfa::agop::{layer_gradients_flops, AgopOptions};
use featlab::theory::nfa::layer_gradients;
use featlab::theory::nfa::rfm::{Kernel, MScale, Rfm, RfmConfig, Solver};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Arguments of `featlab bench agop`.
#[derive(clap::Parser, Debug, Clone)]
pub struct AgopArgs {
    /// Samples n.
    #[arg(long, default_value_t = 1500)]
    pub n: usize,
    /// Input dimension d.
    #[arg(long, default_value_t = 64)]
    pub d: usize,
    /// Width of every hidden layer.
    #[arg(long, default_value_t = 256)]
    pub width: usize,
    /// Hidden layers (the net has depth + 1 weight layers).
    #[arg(long, default_value_t = 5)]
    pub depth: usize,
    /// Outputs c.
    #[arg(long, default_value_t = 10)]
    pub c: usize,
    /// Activation: relu, quadratic, linear, tanh, gelu.
    #[arg(long, default_value = "relu")]
    pub act: String,
    /// Samples per block (the `nfa.batch` option).
    #[arg(long, default_value_t = 512)]
    pub batch: usize,
    /// Timed repetitions (the best and the median are reported).
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
    /// Threads (results are bitwise identical for any value).
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Directory with X.npy and W1.npy … W{depth+1}.npy (e.g. the peer's draws).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Seed of featlab's own draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Arguments of `featlab bench rfm`.
#[derive(clap::Parser, Debug, Clone)]
pub struct RfmArgs {
    /// Samples n.
    #[arg(long, default_value_t = 1500)]
    pub n: usize,
    /// Input dimension d.
    #[arg(long, default_value_t = 64)]
    pub d: usize,
    /// Outputs (classes) c.
    #[arg(long, default_value_t = 10)]
    pub c: usize,
    /// AGOP iterations.
    #[arg(long, default_value_t = 5)]
    pub iters: usize,
    /// Rows per kernel block of the AGOP.
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Threads (the kernel GEMMs and maps; the Cholesky uses the pool too).
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Kernel solver: auto (Cholesky while 8n² bytes ≤ 4 GiB, else CG), cholesky, cg.
    #[arg(long, default_value = "auto")]
    pub solver: String,
    /// CG relative-residual tolerance (`rfm.cg_tol`).
    #[arg(long, default_value_t = 1e-10)]
    pub cg_tol: f64,
    /// Nyström landmarks of the CG preconditioner (`rfm.cg_rank`).
    #[arg(long, default_value_t = 1024)]
    pub cg_rank: usize,
    /// Directory with X.npy and Y.npy (e.g. the peer's draws).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Seed of featlab's own draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

fn read(dir: &Path, f: &str) -> Result<Mat<f64>> {
    Ok(featlab::data::io::read_npy(&dir.join(f))
        .with_context(|| format!("loading {f} from {}", dir.display()))?
        .to_mat())
}

fn randn(seed: u64, name: &str, r: usize, c: usize, std: f64) -> Mat<f64> {
    let v = normal_vec(&mut stream(seed, name), r * c, std);
    Mat::from_fn(r, c, |i, j| v[i * c + j])
}

fn trace(m: MatRef<'_, f64>) -> f64 {
    (0..m.nrows()).map(|i| m[(i, i)]).sum()
}

/// Peak resident memory of this process (VmHWM, MiB), when /proc has it.
fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn best_and_median(mut t: Vec<f64>) -> (f64, f64) {
    t.sort_by(f64::total_cmp);
    (t[0], t[t.len() / 2])
}

/// Run `featlab bench agop` and return its JSON line.
pub fn bench_agop(args: &AgopArgs) -> Result<Value> {
    let act = activation(&args.act)?;
    if [
        args.n,
        args.d,
        args.width,
        args.depth,
        args.c,
        args.repeats,
        args.threads,
    ]
    .contains(&0)
    {
        anyhow::bail!("--n, --d, --width, --depth, --c, --repeats and --threads must be ≥ 1");
    }
    let layers = args.depth + 1;
    let (x, ws) = match &args.data {
        Some(dir) => {
            let x = read(dir, "X.npy")?;
            let ws = (1..=layers)
                .map(|l| read(dir, &format!("W{l}.npy")))
                .collect::<Result<Vec<_>>>()?;
            (x, ws)
        }
        None => {
            let mut dims = vec![args.d];
            dims.extend(std::iter::repeat_n(args.width, args.depth));
            dims.push(args.c);
            let x = randn(args.seed, "bench-data", args.n, args.d, 1.0);
            let ws = (0..layers)
                .map(|l| {
                    let name = format!("bench-w{l}");
                    randn(
                        args.seed,
                        &name,
                        dims[l + 1],
                        dims[l],
                        (1.0 / dims[l] as f64).sqrt(),
                    )
                })
                .collect();
            (x, ws)
        }
    };
    let stack = LayerStack {
        weights: ws.iter().map(|w| w.as_ref()).collect(),
        biases: vec![None; ws.len()],
        mults: vec![1.0; ws.len()],
        activation: act,
    };
    for l in 1..stack.depth() {
        if stack.fan_in(l) != stack.fan_out(l - 1) {
            anyhow::bail!("W{} and W{} do not chain", l, l + 1);
        }
    }
    if x.ncols() != stack.fan_in(0) {
        anyhow::bail!(
            "X has {} columns, W1 expects {}",
            x.ncols(),
            stack.fan_in(0)
        );
    }
    let (n, c) = (x.nrows(), stack.fan_out(stack.depth() - 1));
    let width = stack.fan_out(0);
    let (pool, par) = pool_and_par(args.threads)?;
    let opts = AgopOptions {
        batch: args.batch,
        center: false,
        par,
    };
    let (times, gemm_times, tr) = pool.install(|| -> Result<_> {
        let g = layer_gradients(&stack, x.as_ref(), &opts)?; // warm-up
        let tr = trace(g.agop[0].as_ref());
        // the dominant product of the pass: (n·c × width)·(width × width)
        let a = randn(args.seed, "bench-gemm-a", n * c, width, 1.0);
        let b = randn(args.seed, "bench-gemm-b", width, width, 1.0);
        let mut dst = Mat::<f64>::zeros(n * c, width);
        matmul(
            dst.as_mut(),
            Accum::Replace,
            a.as_ref(),
            b.as_ref(),
            1.0,
            par,
        );
        let (mut times, mut gemm_times) = (Vec::new(), Vec::new());
        for _ in 0..args.repeats {
            let t = Instant::now();
            let g = layer_gradients(&stack, x.as_ref(), &opts)?;
            times.push(t.elapsed().as_secs_f64());
            std::hint::black_box(&g);
            let t = Instant::now();
            matmul(
                dst.as_mut(),
                Accum::Replace,
                a.as_ref(),
                b.as_ref(),
                1.0,
                par,
            );
            gemm_times.push(t.elapsed().as_secs_f64());
            std::hint::black_box(&dst);
        }
        Ok((times, gemm_times, tr))
    })?;
    let (best, median) = best_and_median(times);
    let (gbest, _) = best_and_median(gemm_times);
    let flops = layer_gradients_flops(&stack, n);
    let gemm_flops = 2.0 * (n * c * width * width) as f64;
    let gflops = flops / best / 1e9;
    let gemm_gflops = gemm_flops / gbest / 1e9;
    Ok(json!({
        "bench": "agop", "n": n, "d": stack.fan_in(0), "width": width, "layers": stack.depth(), "c": c,
        "act": args.act, "threads": args.threads, "repeats": args.repeats, "batch": args.batch,
        "seconds": best, "median_seconds": median, "flops": flops, "gflops": gflops,
        "gemm_gflops": gemm_gflops, "fraction_of_gemm_rate": gflops / gemm_gflops,
        "trace_G1": tr, "data": args.data.as_ref().map(|p| p.display().to_string()),
    }))
}

/// Run `featlab bench rfm` and return its JSON line.
pub fn bench_rfm(args: &RfmArgs) -> Result<Value> {
    if [args.n, args.d, args.c, args.threads, args.batch].contains(&0) {
        anyhow::bail!("--n, --d, --c, --batch and --threads must be ≥ 1");
    }
    let (x, y) = match &args.data {
        Some(dir) => (read(dir, "X.npy")?, read(dir, "Y.npy")?),
        None => {
            let x = randn(args.seed, "bench-data", args.n, args.d, 1.0);
            let lv = normal_vec(&mut stream(args.seed, "bench-labels"), args.n, 1.0);
            let c = args.c;
            let y = Mat::from_fn(args.n, c, |i, j| {
                // a class from the normal draw's quantile bucket
                let k = ((lv[i].abs() * 1e6) as usize) % c;
                if k == j {
                    1.0
                } else {
                    0.0
                }
            });
            (x, y)
        }
    };
    if y.nrows() != x.nrows() {
        anyhow::bail!("X has {} rows, Y has {}", x.nrows(), y.nrows());
    }
    let (n, d, c) = (x.nrows(), x.ncols(), y.ncols());
    let cfg = RfmConfig {
        kernel: Kernel::Laplace,
        bandwidth: 10.0,
        iters: args.iters,
        reg: 1e-3,
        diag: false,
        center: false,
        batch: args.batch,
        m_scale: MScale::Mean,
        solver: match args.solver.as_str() {
            "auto" => Solver::Auto,
            "cholesky" => Solver::Cholesky,
            "cg" => Solver::Cg,
            s => anyhow::bail!("--solver must be auto, cholesky or cg, got {s:?}"),
        },
        cg_tol: args.cg_tol,
        cg_rank: args.cg_rank,
        ..Default::default()
    };
    cfg.validate()?;
    let (pool, par) = pool_and_par(args.threads)?;
    let (secs, solve_secs, agop_secs, tr, infos) = pool.install(|| -> Result<_> {
        let mut rfm = Rfm::new(x.as_ref(), &cfg, par);
        let (mut solve_secs, mut agop_secs) = (0.0, 0.0);
        let mut infos = Vec::new();
        let start = Instant::now();
        for _ in 0..args.iters {
            let t = Instant::now();
            infos.push(rfm.solve(y.as_ref())?);
            solve_secs += t.elapsed().as_secs_f64();
            let t = Instant::now();
            rfm.m = rfm.agop();
            agop_secs += t.elapsed().as_secs_f64();
        }
        Ok((
            start.elapsed().as_secs_f64(),
            solve_secs,
            agop_secs,
            trace(rfm.m.as_ref()),
            infos,
        ))
    })?;
    let solver = Rfm::solver_for(&cfg, n);
    // counted flops per iteration: the kernel matrix (2n²d), the Cholesky (n³/3) and its
    // solves (2n²c) — or, for CG, per iteration one kernel product (2n²(d + c)) and the
    // preconditioner (4nrc), plus its setup (2nrd + 2nr²) — and the AGOP
    // (2n²(cd + c + d) + ncd(d + 1))
    let (nf, df, cf) = (n as f64, d as f64, c as f64);
    let rf = cfg.cg_rank.min(n) as f64;
    let agop_flops = 2.0 * nf * nf * (cf * df + cf + df) + nf * cf * df * (df + 1.0);
    let solve_flops: f64 = infos
        .iter()
        .map(|i| match i.solver {
            Solver::Cg => {
                2.0 * nf * rf * df
                    + 2.0 * nf * rf * rf
                    + i.iterations as f64 * (2.0 * nf * nf * (df + cf) + 4.0 * nf * rf * cf)
            }
            _ => 2.0 * nf * nf * df + nf * nf * nf / 3.0 + 2.0 * nf * nf * cf,
        })
        .sum();
    let flops = solve_flops + agop_flops * args.iters as f64;
    let cg_iterations: Vec<usize> = infos.iter().map(|i| i.iterations).collect();
    let solve_bytes = infos.iter().map(|i| i.bytes).max().unwrap_or(0);
    Ok(json!({
        "bench": "rfm", "n": n, "d": d, "c": c, "iters": args.iters, "threads": args.threads,
        "solver": solver, "cg_iterations": cg_iterations, "cg_rank": cfg.cg_rank.min(n),
        "solve_bytes": solve_bytes,
        "seconds": secs, "solve_seconds": solve_secs, "agop_seconds": agop_secs,
        "flops": flops, "gflops": flops / secs / 1e9, "trace_M": tr,
        "peak_rss_mib": peak_rss_mib(),
        "data": args.data.as_ref().map(|p| p.display().to_string()),
    }))
}
