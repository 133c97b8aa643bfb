//! `featlab bench sweep`: the cost of a large sweep beyond its training (issue 26).
//!
//! Writes a sweep file of `--points` points of a small GD config (two-layer ReLU net,
//! width `--m`, Gaussian data n × d with a linear teacher, `--steps` GD steps per point,
//! 11 recorded points; axes: 10 init scales × points/10 seeds) with the default `[save]`,
//! runs it with `featlab sweep --jobs J --no-merge`, then `featlab sweep merge` (each timed
//! from process start to exit, so including the expansion of the sweep file), and prints:
//! * `points_per_sec` of the sweep, and `steps_per_sec_per_job` = points/s × steps / jobs;
//! * `gd_steps_per_sec`: `featlab bench gd` on the same n, d, m (one thread), measured in
//!   the same process, and `predicted_points_per_sec` = jobs × gd_steps_per_sec / steps;
//!   `throughput_vs_predicted` = measured / predicted (issue 26 target ≥ 0.9);
//! * the same in CPU time, which a shared machine's load does not distort:
//!   `cpu_ms_per_point` (user + system of the sweep process / points) against
//!   `gd_cpu_ms_per_point` (the GD steps alone), ratio `cpu_vs_predicted`;
//! * `run_cpu_ms_per_point`: CPU time per point of the same points run as plain runs in
//!   one process (no sweep), ratio `cpu_vs_runs` = what the sweep machinery costs beyond
//!   the runs themselves;
//! * `disk_bytes` (allocated blocks), `apparent_bytes`, `files` under the sweep directory
//!   (target ≤ 300 MB and ≤ 100 files at 100,000 points);
//! * `merge_seconds` (target ≤ 10 s at 100,000 points, report included);
//! * `peak_rss_bytes_sweep` / `_merge`: peak resident memory of each (both run as child
//!   processes of this binary; `wait4`'s `ru_maxrss`).

use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Arguments of `featlab bench sweep`.
#[derive(clap::Parser, Debug, Clone)]
pub struct SweepBenchArgs {
    /// Points of the sweep (a multiple of 10).
    #[arg(long, default_value_t = 100_000)]
    pub points: usize,
    /// Points run at once (`featlab sweep --jobs`).
    #[arg(long, default_value_t = 2)]
    pub jobs: usize,
    /// GD steps per point.
    #[arg(long, default_value_t = 100)]
    pub steps: usize,
    /// Samples.
    #[arg(long, default_value_t = 64)]
    pub n: usize,
    /// Input dimension.
    #[arg(long, default_value_t = 8)]
    pub d: usize,
    /// Hidden width.
    #[arg(long, default_value_t = 16)]
    pub m: usize,
    /// Sweep directory (default: a fresh directory under the system temp dir, removed after).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The sweep file of the benchmark.
pub fn sweep_text(a: &SweepBenchArgs) -> String {
    let seeds: Vec<String> = (0..a.points / 10).map(|s| s.to_string()).collect();
    format!(
        "description = \"featlab bench sweep: {points} points of {steps} GD steps\"\n\
         base_file = \"base.toml\"\nseed = 0\n[grid]\n\
         \"model.init_scale\" = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]\n\
         seed = [{seeds}]\n",
        points = a.points,
        steps = a.steps,
        seeds = seeds.join(", ")
    )
}

fn base_text(a: &SweepBenchArgs) -> String {
    let lr = 0.01;
    format!(
        "experiment = \"train\"\nseed = 0\n[model]\nkind = \"two_layer\"\nwidth = {m}\nactivation = \"relu\"\ninit_scale = 0.5\n\
         [data]\nkind = \"gaussian\"\nn = {n}\nd = {d}\nteacher = {{ kind = \"linear\", singular_values = [2.0], outputs = 1 }}\n\
         [train]\nmethod = \"gd\"\nlr = {lr}\nt_max = {t}\nrecord = {{ kind = \"linear\", points = 11 }}\n",
        m = a.m,
        n = a.n,
        d = a.d,
        t = lr * a.steps as f64
    )
}

/// (allocated bytes, apparent bytes, files) under `dir`.
fn disk_usage(dir: &Path) -> (u64, u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let mut t = (0, 0, 0);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.filter_map(|e| e.ok()) {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else {
                t.0 += m.blocks() * 512;
                t.1 += m.len();
                t.2 += 1;
            }
        }
    }
    t
}

fn cpu_seconds(u: &libc::rusage) -> f64 {
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 * 1e-6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// CPU seconds (user + system) this process has used.
fn own_cpu_seconds() -> f64 {
    // SAFETY: getrusage fills a plain-data struct.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    cpu_seconds(&u)
}

/// Run this binary with `args`; (wall seconds, CPU seconds, peak RSS bytes). An error if
/// it fails.
fn run_child(args: &[&str]) -> Result<(f64, f64, u64)> {
    let exe = std::env::current_exe().context("cannot find the featlab binary")?;
    let start = Instant::now();
    let child = std::process::Command::new(&exe)
        .args(args)
        .env_remove("SLURM_ARRAY_TASK_ID")
        .stdout(std::process::Stdio::null())
        .spawn()
        .with_context(|| format!("cannot run `{}`", exe.display()))?;
    let mut status = 0;
    // SAFETY: `rusage` is plain data that wait4 fills; `child` is our own unwaited child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    let secs = start.elapsed().as_secs_f64();
    if pid < 0 {
        anyhow::bail!("wait4 failed: {}", std::io::Error::last_os_error());
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        anyhow::bail!("`featlab {}` failed (status {status})", args.join(" "));
    }
    Ok((secs, cpu_seconds(&usage), usage.ru_maxrss as u64 * 1024))
}

/// CPU seconds per point of the benchmark's points run one after another in this process
/// through `featlab::experiments` (no sweep): 2000 points of the same config, init scales
/// 0.05–0.95, seeds 0–1999.
fn runs_cpu_seconds_per_point(a: &SweepBenchArgs) -> Result<f64> {
    let base = featlab::config::parse_toml(&base_text(a), "bench base")?;
    let ctx = featlab::train::RunContext {
        progress: &featlab::train::NoProgress,
        cancel: None,
        par: faer::Par::Seq,
    };
    let k = 2000;
    let cpu0 = own_cpu_seconds();
    for i in 0..k {
        let mut t = base.clone();
        t.insert("seed".into(), toml::Value::Integer(i as i64));
        if let Some(toml::Value::Table(m)) = t.get_mut("model") {
            m.insert(
                "init_scale".into(),
                toml::Value::Float(0.05 + 0.1 * (i % 10) as f64),
            );
        }
        featlab::experiments::select(&t)?.resolve_and_run(&t, &ctx)?;
    }
    Ok((own_cpu_seconds() - cpu0) / k as f64)
}

/// Run `featlab bench sweep` and return its JSON line.
pub fn bench_sweep(a: &SweepBenchArgs) -> Result<Value> {
    if a.points < 10 || !a.points.is_multiple_of(10) || a.jobs == 0 || a.steps == 0 {
        anyhow::bail!("--points must be a positive multiple of 10; --jobs and --steps ≥ 1");
    }
    let (root, temporary) = match &a.out {
        Some(p) => (p.clone(), false),
        None => (
            std::env::temp_dir().join(format!("featlab-bench-sweep-{}", std::process::id())),
            true,
        ),
    };
    if root.exists() {
        anyhow::bail!("`{}` exists; give a new --out directory", root.display());
    }
    let spec_dir = root.join("spec");
    std::fs::create_dir_all(&spec_dir)
        .with_context(|| format!("cannot create `{}`", spec_dir.display()))?;
    std::fs::write(spec_dir.join("base.toml"), base_text(a))?;
    let spec = spec_dir.join("bench.toml");
    std::fs::write(&spec, sweep_text(a))?;
    let out = root.join("sweep");

    // The GD step rate of the same problem, one thread, in wall and in CPU time.
    let cpu0 = own_cpu_seconds();
    let gd_steps = 20_000u64;
    let gd = super::gd::bench_gd(&super::GdArgs {
        n: a.n,
        d: a.d,
        m: a.m,
        steps: gd_steps,
        lr: 0.01,
        ..super::GdArgs::default()
    })?;
    let gd_cpu_sps = (gd_steps + 10) as f64 / (own_cpu_seconds() - cpu0);
    let gd_sps = gd["steps_per_sec"].as_f64().unwrap_or(f64::NAN);
    let run_cpu = runs_cpu_seconds_per_point(a)?;

    let jobs = a.jobs.to_string();
    let (spec_s, out_s) = (spec.display().to_string(), out.display().to_string());
    let (sweep_seconds, sweep_cpu, sweep_rss) = run_child(&[
        "sweep",
        &spec_s,
        "--out",
        &out_s,
        "--jobs",
        &jobs,
        "--quiet",
        "--no-png",
        "--no-merge",
    ])?;
    let (disk, apparent, files) = disk_usage(&out);
    let (merge_seconds, _, merge_rss) =
        run_child(&["sweep", "merge", &out_s, "--quiet", "--no-png"])?;
    let (disk_all, _, files_all) = disk_usage(&out);
    let pps = a.points as f64 / sweep_seconds;
    let predicted = a.jobs as f64 * gd_sps / a.steps as f64;
    if temporary {
        std::fs::remove_dir_all(&root).ok();
    }
    Ok(json!({
        "bench": "sweep", "points": a.points, "jobs": a.jobs, "steps_per_point": a.steps,
        "n": a.n, "d": a.d, "m": a.m,
        "sweep_seconds": sweep_seconds, "points_per_sec": pps,
        "steps_per_sec_per_job": pps * a.steps as f64 / a.jobs as f64,
        "gd_steps_per_sec": gd_sps, "predicted_points_per_sec": predicted,
        "throughput_vs_predicted": pps / predicted,
        // Load-independent: CPU time per point against the CPU time of its GD steps.
        "sweep_cpu_seconds": sweep_cpu, "cpu_ms_per_point": 1e3 * sweep_cpu / a.points as f64,
        "gd_cpu_steps_per_sec": gd_cpu_sps,
        "gd_cpu_ms_per_point": 1e3 * a.steps as f64 / gd_cpu_sps,
        "cpu_vs_predicted": (a.steps as f64 / gd_cpu_sps) / (sweep_cpu / a.points as f64),
        // The same points as plain runs in one process (config resolution, data, teacher,
        // recording included): what the sweep machinery adds on top of a run.
        "run_cpu_ms_per_point": 1e3 * run_cpu,
        "cpu_vs_runs": run_cpu / (sweep_cpu / a.points as f64),
        "disk_bytes": disk, "apparent_bytes": apparent, "files": files,
        "merge_seconds": merge_seconds,
        "disk_bytes_after_merge": disk_all, "files_after_merge": files_all,
        "peak_rss_bytes_sweep": sweep_rss,
        "peak_rss_bytes_merge": merge_rss,
        "out": if temporary { Value::Null } else { json!(out.display().to_string()) },
    }))
}
